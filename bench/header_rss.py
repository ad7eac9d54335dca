"""Peak memory of one header parse, by header size: the figures behind MAX_HEADER_BYTES.

    python bench/header_rss.py [--sizes 1,5,20,100]

For each size (MB of header text) it writes a sparse ``adapters.safetensors``
and, in a fresh interpreter per case, parses it and reports the peak resident
set size of that process (``VmHWM``), minus the same interpreter's peak
after only the imports:

- ``real``: a PEFT-style header (``base_model.model.model.layers.N.mlp.experts.E.
  down_proj.lora_A.weight``, [r, in] F32), about 140 bytes per tensor: a
  per-expert LoRA on a large mixture-of-experts model looks like this;
- ``wasteful``: the most wasteful JSON per byte that is still an object of
  entries (many tiny entries with empty names is less; an array of empty
  objects is the worst and is refused after the parse);
- ``array``: ``[{}, {}, ...]``, the worst case the tests hold to 32 x N.

Each with the reference parser, and with the msgspec parser when installed.
The limit is bypassed for the measurement (MAX_HEADER_BYTES is raised in the child).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

MB = 1_000_000

# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the forking parent.
CHILD = """
import sys

def peak_rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

from adapter_guard import safetensors_header
safetensors_header.MAX_HEADER_BYTES = 1 << 40
read = safetensors_header.read_header
if sys.argv[2] == "fast":
    from adapter_guard import safetensors_fast
    read = safetensors_fast.read_header
base = peak_rss()
try:
    header = read(sys.argv[1])
    outcome = f"{len(header.tensors)} tensors"
except safetensors_header.HeaderError as error:
    outcome = error.message[:40]
peak = peak_rss()
print(base, peak, outcome)
"""


def real_header(size: int) -> bytes:
    parts, offset, i = [], 0, 0
    total = 2
    while total < size - 200:
        layer, expert = divmod(i, 256)
        name = f"base_model.model.model.layers.{layer}.mlp.experts.{expert}.down_proj.lora_A.weight"
        part = json.dumps(name) + f':{{"dtype":"F32","shape":[1,1],"data_offsets":[{offset},{offset + 4}]}}'
        parts.append(part)
        total += len(part) + 1
        offset += 4
        i += 1
    raw = ("{" + ",".join(parts) + "}").encode()
    return raw + b" " * (size - len(raw)), offset


def wasteful_header(size: int) -> bytes:
    # Short names and empty objects: refused ("has no 'dtype'"), but only after the whole parse.
    parts, total, i = [], 2, 0
    while total < size - 20:
        part = f'"{i:x}":{{}}'
        parts.append(part)
        total += len(part) + 1
        i += 1
    raw = ("{" + ",".join(parts) + "}").encode()
    return raw + b" " * (size - len(raw)), 0


def array_header(size: int) -> bytes:
    raw = b"[" + b",".join([b"{}"] * ((size - 2) // 3)) + b"]"
    return raw + b" " * (size - len(raw)), 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,5,20,100", help="header sizes in MB")
    args = parser.parse_args()
    parsers = ["reference"] + (["fast"] if importlib.util.find_spec("msgspec") else [])
    print(f"{'header':>8} {'shape':<9} {'parser':<10} {'peak RSS':>9} {'x N':>6}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "adapters.safetensors"
        for size in (int(float(s) * MB) for s in args.sizes.split(",")):
            for kind, build in (("real", real_header), ("wasteful", wasteful_header), ("array", array_header)):
                raw, data = build(size)
                with open(path, "wb") as f:
                    f.write(struct.pack("<Q", len(raw)) + raw)
                    f.truncate(8 + len(raw) + data)
                for name in parsers:
                    out = subprocess.run([sys.executable, "-c", CHILD, str(path), name], capture_output=True, text=True)
                    if out.returncode:
                        print(f"{size / MB:6.0f} MB {kind:<9} {name:<10} failed: {out.stderr.strip()[-200:]}")
                        continue
                    base, peak, outcome = out.stdout.split(" ", 2)
                    grown = (int(peak) - int(base)) * 1024  # VmHWM is in kB
                    print(f"{size / MB:6.0f} MB {kind:<9} {name:<10} {grown / MB:6.0f} MB {grown / size:6.1f}  {outcome.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
