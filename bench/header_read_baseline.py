#!/usr/bin/env python3
"""The "bare header read" baseline: what a user would write to list adapter shapes.

For every ``adapters.safetensors`` under the given paths, read the 8-byte header
length and the JSON header, and print each tensor's name and shape. No
validation, no adapter_guard import. bench/ times adapter-guard against this.
"""

import json
import os
import struct
import sys


def main(paths):
    for top in paths or ["."]:
        for directory, _, files in os.walk(top):
            if "adapters.safetensors" in files:
                with open(os.path.join(directory, "adapters.safetensors"), "rb") as f:
                    (length,) = struct.unpack("<Q", f.read(8))
                    header = json.loads(f.read(length))
                for name, info in header.items():
                    if name != "__metadata__":
                        print(name, info["shape"])


if __name__ == "__main__":
    main(sys.argv[1:])
