"""adapter-guard's speed benchmark: medians, CPU time and ratios of commands run side by side.

    python bench/run.py [--repeat 9] [--adapters 1001] [--no-mlx]

It builds a corpus under ``bench/.corpus`` (kept between runs):

- 1,001 adapters, each an ``adapter_config.json`` as ``mlx_lm.lora`` writes it
  and an ``adapters.safetensors`` with 256 tensors whose header is written the
  way the safetensors library writes it, with the data region left sparse;
- one adapter whose weights file is more than 1 GB (sparse), and one small one.

Then it times every command in a fresh process, in every round, alternating
the order (forward, then backward) so that all share the machine's state. For
each it prints the median wall time and the median CPU time (user + system of
the process and every child it waited for: ``RUSAGE_CHILDREN``), so a
single-core CI runner is covered too:

- ``adapter-guard`` on the corpus, against:
  - ``check-json`` (pre-commit-hooks) on the same configs;
  - a bare ``safetensors.safe_open`` script: ``json.load`` of each config,
    then the keys and shapes of each weights file (what a user would write);
  - the bare header read (``bench/header_read_baseline.py``): open each header, print the shapes;
  - reading the header bytes only, with no parse (the I/O floor);
  - the same headers through ``json.loads`` and through msgspec, without
    output (informational: the parse floors);
- ``adapter-guard`` on one adapter's config against ``check-json`` on that one
  config (what a pre-commit hook on the staged files costs);
- ``adapter-guard`` on the huge adapter and on the small one;
- ``adapter-guard --version``;
- one adapter with an option (``--fail-on warning``, the default): the command
  line goes through click, which a plain ``adapter-guard PATHS`` skips;
- with the ``mlx`` extra: ``--smoke`` on the bundled tiny llama adapter, and
  ``--gpt-oss`` on its built-in tiny model (``bench/smoke_bench.py`` and
  ``bench/gpt_oss_bench.py`` break those down into import and check time).

Every target of issue 12 is printed with "met" or "NOT MET". Nothing here is a
timed test: it prints figures, the README records them. The machine's load
average is printed too: figures from a busy machine are only comparable
within one invocation.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
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


def tool(name: str) -> str:
    """A console script: beside this interpreter, else on PATH."""
    return str(BIN / name) if (BIN / name).exists() else (shutil.which(name) or name)

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


# The I/O floor for any tool that reads every header: the bytes, no parse.
READ_ONLY = """
import os, sys
for directory, _, files in os.walk(sys.argv[1]):
    if "adapters.safetensors" in files:
        with open(os.path.join(directory, "adapters.safetensors"), "rb") as f:
            raw = f.read(int.from_bytes(f.read(8), "little"))
"""

# The parse floor with the standard library: json.loads of every header, no output.
PARSE_ONLY = """
import json, os, struct, sys
for directory, _, files in os.walk(sys.argv[1]):
    if "adapters.safetensors" in files:
        with open(os.path.join(directory, "adapters.safetensors"), "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            shapes = {k: v["shape"] for k, v in json.loads(f.read(n)).items() if k != "__metadata__"}
"""

# The parse floor in C: msgspec decoding every header into typed records, no output.
MSGSPEC_ONLY = """
import os, sys
import msgspec

class Entry(msgspec.Struct, gc=False):
    dtype: str = ""
    shape: tuple[int, ...] = ()
    data_offsets: tuple[int, int] = (0, 0)

decode = msgspec.json.Decoder(dict[str, Entry | None]).decode
for directory, _, files in os.walk(sys.argv[1]):
    if "adapters.safetensors" in files:
        with open(os.path.join(directory, "adapters.safetensors"), "rb") as f:
            header = decode(f.read(int.from_bytes(f.read(8), "little")))
"""

# What a user would write with the safetensors library: each config, then keys and shapes.
SAFE_OPEN = """
import json, os, sys
from safetensors import safe_open
for directory, _, files in os.walk(sys.argv[1]):
    if "adapter_config.json" in files:
        with open(os.path.join(directory, "adapter_config.json")) as f:
            config = json.load(f)
        with safe_open(os.path.join(directory, "adapters.safetensors"), "np") as f:
            for name in f.keys():
                print(name, f.get_slice(name).get_shape())
"""


# Every command runs as it would after a normal install, with its bytecode cached
# (pip compiles it at install time): PYTHONDONTWRITEBYTECODE would make every run
# of an editable install compile adapter-guard from source, but not check-json.
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the process and its children) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--adapters", type=int, default=1001)
    parser.add_argument("--no-mlx", action="store_true", help="skip the --smoke and --gpt-oss lines")
    args = parser.parse_args()

    build_corpus(args.adapters)
    many = CORPUS / "many"
    configs = sorted(str(p) for p in many.glob("*/adapter_config.json"))
    guard = tool("adapter-guard")
    commands = {
        "adapter-guard (corpus)": [guard, str(many)],
        "check-json (corpus)": [tool("check-json"), *configs],
        "safe_open script": [sys.executable, "-c", SAFE_OPEN, str(many)],
        "bare header read, printing": [sys.executable, str(HERE / "header_read_baseline.py"), str(many)],
        "header bytes only": [sys.executable, "-c", READ_ONLY, str(many)],
        "json.loads of headers, no output": [sys.executable, "-c", PARSE_ONLY, str(many)],
        "adapter-guard (one adapter)": [guard, configs[0]],
        # Any option sends the command line through click (adapter_guard.cli); a plain one does not.
        "adapter-guard --fail-on warning (one)": [guard, "--fail-on", "warning", configs[0]],
        "check-json (one config)": [tool("check-json"), configs[0]],
        "adapter-guard (huge adapter)": [guard, str(CORPUS / "huge")],
        "adapter-guard (small adapter)": [guard, str(CORPUS / "small")],
        "adapter-guard --version": [guard, "--version"],
    }
    if importlib.util.find_spec("msgspec") is not None:
        commands["msgspec of headers, no output"] = [sys.executable, "-c", MSGSPEC_ONLY, str(many)]
    if importlib.util.find_spec("mlx_lm") is not None and not args.no_mlx:  # the [mlx] extra: time the MLX edges too
        examples = HERE.parent / "examples"
        empty = CORPUS / "empty"
        empty.mkdir(exist_ok=True)
        commands["adapter-guard --smoke (tiny llama)"] = [
            guard, "--smoke", "--base-model", str(examples / "base-models" / "tiny-llama"),
            str(examples / "adapters" / "clean-llama"),
        ]
        commands["adapter-guard --gpt-oss (built-in)"] = [guard, "--gpt-oss", str(empty)]
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():  # warm the page cache and the bytecode cache once
        timed(cmd)
    order = list(commands)
    for round_ in range(args.repeat):
        for name in order if round_ % 2 == 0 else reversed(order):
            seconds, cpu_seconds = timed(commands[name])
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    med = {name: statistics.median(values) for name, values in wall.items()}
    med_cpu = {name: statistics.median(values) for name, values in cpu.items()}

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{len(configs)} adapters x 256 tensors; median of {args.repeat} runs, order alternating; "
          f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable); load average {load}")
    print(f"  {'command':<36} {'wall ms':>8} {'CPU ms':>8}")
    for name in commands:
        print(f"  {name:<36} {med[name] * 1000:8.1f} {med_cpu[name] * 1000:8.1f}")

    corpus, check = med["adapter-guard (corpus)"], med["check-json (corpus)"]
    one = med["adapter-guard (one adapter)"] / med["check-json (one config)"]
    cpu_ratio = med_cpu["adapter-guard (corpus)"] / med_cpu["check-json (corpus)"]
    rows = [
        ("adapter-guard / check-json, 1,001 adapters", corpus / check, "<= 5.0x (stretch <= 4x)", corpus / check <= 5.0),
        ("adapter-guard / safe_open script", corpus / med["safe_open script"], "<= 0.6x", corpus / med["safe_open script"] <= 0.6),
        ("CPU: adapter-guard / check-json", cpu_ratio, "<= 8.5x", cpu_ratio <= 8.5),
        ("one adapter / check-json on one config", one, "<= 1.6x", one <= 1.6),
        ("huge adapter / small adapter", med["adapter-guard (huge adapter)"] / med["adapter-guard (small adapter)"],
         "<= 1.1x", med["adapter-guard (huge adapter)"] / med["adapter-guard (small adapter)"] <= 1.1),
    ]
    print()
    for label, ratio, target, ok in rows:
        print(f"  {label:<44} {ratio:6.2f}x  target {target}: {verdict(ok)}")
    version_ms = med["adapter-guard --version"] * 1000
    print(f"  {'adapter-guard --version':<44} {version_ms:5.0f} ms  target <= 40 ms: {verdict(version_ms <= 40)}")
    if "adapter-guard --gpt-oss (built-in)" in med:
        seconds = med["adapter-guard --gpt-oss (built-in)"]
        print(f"  {'gpt-oss regression, built-in':<44} {seconds:5.2f} s   target <= 10 s: {verdict(seconds <= 10)}")
    print()
    print("  informational (no target):")
    for name in ("bare header read, printing", "header bytes only", "json.loads of headers, no output",
                 "msgspec of headers, no output"):
        if name in med:
            print(f"  {'adapter-guard / ' + name:<54} {corpus / med[name]:6.2f}x")
    click_one = med["adapter-guard --fail-on warning (one)"] / med["check-json (one config)"]
    print(f"  {'one adapter with an option (through click) / check-json':<54} {click_one:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
