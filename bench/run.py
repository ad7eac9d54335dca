"""adapter-guard's speed benchmark: medians and ratios of commands run side by side.

    python bench/run.py [--repeat 5] [--adapters 1000]

It builds a corpus under ``bench/.corpus`` (kept between runs):

- 1,000 adapters, each an ``adapter_config.json`` as ``mlx_lm.lora`` writes it
  and an ``adapters.safetensors`` with 256 tensors whose header is written the
  way the safetensors library writes it, with the data region left sparse;
- one adapter whose weights file is more than 1 GB (sparse), and one small one.

Then it times, alternating the commands in every round so that they share
the machine's state:

- ``adapter-guard`` on the corpus;
- ``check-json`` (pre-commit-hooks) on the same configs;
- the bare header read (``bench/header_read_baseline.py``): open each header, list the shapes;
- the same parse without printing (informational: the floor for any header reader);
- ``adapter-guard`` on the huge adapter and on the small one;
- ``adapter-guard --version``;
- with the ``mlx`` extra: ``--smoke`` on the bundled tiny llama adapter, and
  ``--gpt-oss`` on its built-in tiny model (``bench/smoke_bench.py`` and
  ``bench/gpt_oss_bench.py`` break those down into import and check time).

Nothing here is a timed test: it prints figures, the README records them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / ".corpus"
BIN = Path(sys.executable).parent

MODULES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"]


def write_adapter(directory: Path, *, layers: int, hidden: int, rank: int) -> None:
    """A real-looking adapter: mlx_lm.lora config, safetensors header, sparse data."""
    directory.mkdir(parents=True, exist_ok=True)
    header, offset = {}, 0
    for layer in range(layers):
        for module in MODULES:
            for leaf, shape in (("lora_a", [hidden, rank]), ("lora_b", [rank, hidden])):
                size = shape[0] * shape[1] * 4
                header[f"model.layers.{layer}.{module}.{leaf}"] = {
                    "dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]
                }
                offset += size
    header["__metadata__"] = {"format": "mlx"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the library pads the header to 8 bytes
    with open(directory / "adapters.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        f.truncate(8 + len(raw) + offset)  # sparse: no data blocks are written
    config = {
        "adapter_path": str(directory), "batch_size": 4, "config": None, "data": "data", "fine_tune_type": "lora",
        "grad_accumulation_steps": 1, "grad_checkpoint": False, "iters": 1000, "learning_rate": 1e-05,
        "lora_parameters": {"rank": rank, "dropout": 0.0, "scale": 20.0}, "lr_schedule": None,
        "mask_prompt": False, "max_seq_length": 2048, "model": "mlx-community/Llama-3.2-1B-Instruct-4bit",
        "num_layers": -1, "optimizer": "adam", "optimizer_config": {"adam": {}, "adamw": {}},
        "resume_adapter_file": None, "save_every": 100, "seed": 0, "steps_per_eval": 200,
        "steps_per_report": 10, "test": False, "test_batches": 500, "train": True, "val_batches": 25,
        "wandb": None,
    }
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=4, sort_keys=True))


def build_corpus(count: int) -> None:
    marker = CORPUS / f".built-{count}"
    if marker.exists():
        return
    shutil.rmtree(CORPUS, ignore_errors=True)
    for i in range(count):
        # 32 layers x 4 modules x (lora_a, lora_b) = 256 tensors
        write_adapter(CORPUS / "many" / f"adapter-{i:04d}", layers=32, hidden=2048, rank=8)
    # 256 tensors of 8192 x 256 float32 = 2 GiB of sparse data
    write_adapter(CORPUS / "huge", layers=32, hidden=8192, rank=256)
    write_adapter(CORPUS / "small", layers=32, hidden=64, rank=8)
    marker.touch()


# The floor for any tool that reads every header: the bare read without printing.
PARSE_ONLY = """
import json, os, struct, sys
for directory, _, files in os.walk(sys.argv[1]):
    if "adapters.safetensors" in files:
        with open(os.path.join(directory, "adapters.safetensors"), "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            shapes = {k: v["shape"] for k, v in json.loads(f.read(n)).items() if k != "__metadata__"}
"""


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(cmd[:3])} ... exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--adapters", type=int, default=1000)
    args = parser.parse_args()

    build_corpus(args.adapters)
    configs = sorted(str(p) for p in (CORPUS / "many").glob("*/adapter_config.json"))
    guard = str(BIN / "adapter-guard")
    commands = {
        "adapter-guard (corpus)": [guard, str(CORPUS / "many")],
        "bare header read": [sys.executable, str(HERE / "header_read_baseline.py"), str(CORPUS / "many")],
        "check-json": [str(BIN / "check-json"), *configs],
        "bare header parse, no output": [sys.executable, "-c", PARSE_ONLY, str(CORPUS / "many")],
        "adapter-guard (huge adapter)": [guard, str(CORPUS / "huge")],
        "adapter-guard (small adapter)": [guard, str(CORPUS / "small")],
        "adapter-guard --version": [guard, "--version"],
    }
    if importlib.util.find_spec("mlx_lm") is not None:  # the [mlx] extra: time the MLX edges too
        examples = HERE.parent / "examples"
        empty = CORPUS / "empty"
        empty.mkdir(exist_ok=True)
        commands["adapter-guard --smoke (tiny llama)"] = [
            guard, "--smoke", "--base-model", str(examples / "base-models" / "tiny-llama"),
            str(examples / "adapters" / "clean-llama"),
        ]
        commands["adapter-guard --gpt-oss (built-in)"] = [guard, "--gpt-oss", str(empty)]
    times: dict[str, list[float]] = {name: [] for name in commands}
    for name, cmd in commands.items():  # warm the page cache once
        timed(cmd)
    for _ in range(args.repeat):
        for name, cmd in commands.items():
            times[name].append(timed(cmd))
    median = {name: statistics.median(values) for name, values in times.items()}

    print(f"{len(configs)} adapters x 256 tensors; median of {args.repeat} runs; {os.cpu_count()} cores")
    for name, value in median.items():
        print(f"  {name:<32} {value * 1000:8.1f} ms")
    ratios = [
        ("adapter-guard / bare header read", median["adapter-guard (corpus)"] / median["bare header read"], 1.0),
        ("adapter-guard / check-json", median["adapter-guard (corpus)"] / median["check-json"], 5.0),
        ("huge / small adapter", median["adapter-guard (huge adapter)"] / median["adapter-guard (small adapter)"], 1.1),
    ]
    floor = median["adapter-guard (corpus)"] / median["bare header parse, no output"]
    print(f"  {'adapter-guard / bare parse, no output':<36} {floor:5.2f}x  (informational: the parse floor)")
    for label, ratio, target in ratios:
        verdict = "ok" if ratio <= target else "OVER TARGET"
        print(f"  {label:<36} {ratio:5.2f}x  (target <= {target}x: {verdict})")
    if "adapter-guard --gpt-oss (built-in)" in median:
        seconds = median["adapter-guard --gpt-oss (built-in)"]
        print(f"  {'gpt-oss regression, built-in':<36} {seconds:5.2f} s   (target <= 10 s: {'ok' if seconds <= 10 else 'OVER TARGET'})")
    version_ms = median["adapter-guard --version"] * 1000
    print(f"  {'adapter-guard --version':<36} {version_ms:5.0f} ms  (target <= 150 ms: {'ok' if version_ms <= 150 else 'OVER TARGET'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
