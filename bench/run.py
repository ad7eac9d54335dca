"""adapter-guard's speed benchmark: medians, CPU time and ratios of commands run side by side.

    python bench/run.py [--repeat 9] [--adapters 1001] [--no-mlx]

It builds a corpus under ``bench/.corpus`` (kept between runs):

- 1,001 adapters, each an ``adapter_config.json`` as ``mlx_lm.lora`` writes it
  and an ``adapters.safetensors`` with 256 tensors whose header is written the
  way the safetensors library writes it, with the data region left sparse;
- one adapter whose weights file is more than 1 GB (sparse), and one small one;
- two corpora in the other layouts (``--layout-adapters``, 300 each), named as
  the real writers name them (tests/peft_writers.py, tests/vlm_writers.py):
  PEFT ``save_pretrained`` (``adapter_model.safetensors``, 224 tensors
  ``base_model.model.model.layers.N.<module>.lora_A.weight``, the full
  LoraConfig dump of peft 0.21.2) and mlx-vlm's trainer (``adapters.safetensors``,
  256 tensors ``language_model.model.layers.N.<module>.lora_a``, the
  ``{fine_tune_type, num_layers, lora_parameters}`` config with full-path keys).

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
- ``adapter-guard`` against ``check-json`` on the PEFT and the mlx-vlm corpus;
- one adapter with an option (``--fail-on warning``, the default): the command
  line goes through click, which a plain ``adapter-guard PATHS`` skips;
- with the ``mlx`` extra: ``--smoke`` on the bundled tiny llama adapter, and
  ``--gpt-oss`` on its built-in tiny model (``bench/smoke_bench.py`` and
  ``bench/gpt_oss_bench.py`` break those down into import and check time).

In-process, it also measures what format detection (``formats.detect.detect``)
costs on each corpus, as a share of the whole lint (target: at most 3 %).

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


def write_header(path: Path, tensors: list[tuple[str, list[int]]], metadata: dict | None) -> None:
    """A safetensors file whose header lists ``tensors`` (F32, in this order), data left sparse."""
    header, offset = ({"__metadata__": metadata} if metadata is not None else {}), 0
    for name, shape in tensors:
        size = shape[0] * shape[1] * 4
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        f.truncate(8 + len(raw) + offset)


#: A Llama-3.2-1B-like base: (module, in, out) of every projection LoRA wraps.
LLAMA_PROJECTIONS = [
    ("self_attn.q_proj", 2048, 2048), ("self_attn.k_proj", 2048, 512), ("self_attn.v_proj", 2048, 512),
    ("self_attn.o_proj", 2048, 2048), ("mlp.gate_proj", 2048, 8192), ("mlp.up_proj", 2048, 8192),
    ("mlp.down_proj", 8192, 2048),
]


def write_peft_adapter(directory: Path, *, layers: int = 16, rank: int = 16) -> None:
    """As PEFT's save_pretrained writes a LoRA on every projection of 16 layers (224 tensors):
    lora_A (r, in) and lora_B (out, r) under ``base_model.model.``; the safetensors library
    orders the tensors by name and writes ``{"format": "pt"}``."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = []
    for layer in range(layers):
        for module, width_in, width_out in LLAMA_PROJECTIONS:
            path = f"base_model.model.model.layers.{layer}.{module}"
            tensors += [(f"{path}.lora_A.weight", [rank, width_in]), (f"{path}.lora_B.weight", [width_out, rank])]
    write_header(directory / "adapter_model.safetensors", sorted(tensors), {"format": "pt"})
    # The LoraConfig peft 0.21.2 writes (examples/adapters/peft-clean, from the real writer), for this adapter.
    config = json.loads((HERE.parent / "examples" / "adapters" / "peft-clean" / "adapter_config.json").read_text())
    config.update(r=rank, lora_alpha=2 * rank, base_model_name_or_path="meta-llama/Llama-3.2-1B",
                  target_modules=sorted(m.rpartition(".")[2] for m, _, _ in LLAMA_PROJECTIONS))
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))


def write_vlm_adapter(directory: Path, *, layers: int = 32, rank: int = 8) -> None:
    """As mlx-vlm's trainer (save_trainable_weights) writes a LoRA on q/k/v/o of a LLaVA's 32
    language-model layers (256 tensors): full paths from the VLM root, lora_a (in, r) and
    lora_b (r, out), no metadata; the config is save_json's (indent 2, sorted keys)."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors, keys = [], []
    for layer in range(layers):
        for module, width_in, width_out in LLAMA_PROJECTIONS[:4]:
            path = f"language_model.model.layers.{layer}.{module}"
            keys.append(path)
            tensors += [(f"{path}.lora_a", [width_in, rank]), (f"{path}.lora_b", [rank, width_out])]
    write_header(directory / "adapters.safetensors", sorted(tensors), None)
    config = {"fine_tune_type": "lora", "lora_parameters": {"dropout": 0.0, "keys": keys, "rank": rank, "scale": 2.0},
              "num_layers": -1}
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))


def build_corpus(count: int, layout_count: int) -> None:
    marker = CORPUS / f".built-{count}-{layout_count}"
    if marker.exists():
        return
    shutil.rmtree(CORPUS, ignore_errors=True)
    for i in range(count):
        # 32 layers x 4 modules x (lora_a, lora_b) = 256 tensors
        write_adapter(CORPUS / "many" / f"adapter-{i:04d}", layers=32, hidden=2048, rank=8)
    # 256 tensors of 8192 x 256 float32 = 2 GiB of sparse data
    write_adapter(CORPUS / "huge", layers=32, hidden=8192, rank=256)
    write_adapter(CORPUS / "small", layers=32, hidden=64, rank=8)
    for i in range(layout_count):
        write_peft_adapter(CORPUS / "peft" / f"adapter-{i:04d}")
        write_vlm_adapter(CORPUS / "vlm" / f"adapter-{i:04d}")
    marker.touch()


def detection_share(directory: Path, repeat: int) -> tuple[float, float]:
    """In this process: the CPU seconds of one lint of ``directory`` (serial, headers parsed
    as a run of that size parses them) and the share of it spent in format detection.
    The least of ``repeat`` runs, after one that warms the caches."""
    import adapter_guard.formats as formats
    from adapter_guard import engine
    from adapter_guard.settings import Settings

    detect = formats.detect
    spent = [0.0]

    def timed_detect(*args, **kwargs):
        start = time.process_time()
        try:
            return detect(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - start

    settings = Settings(paths=[directory], root=directory, plans_fixes=False)
    workers = engine._workers
    formats.detect, engine._workers = timed_detect, (lambda count, settings: 1)
    try:
        engine.run(settings)
        best = None
        for _ in range(repeat):
            spent[0] = 0.0
            start = time.process_time()
            engine.run(settings)
            total = time.process_time() - start
            if best is None or total < best[0]:
                best = (total, spent[0] / total)
    finally:
        formats.detect, engine._workers = detect, workers
    return best


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
    parser.add_argument("--layout-adapters", type=int, default=300, help="adapters in each of the PEFT and mlx-vlm corpora")
    parser.add_argument("--no-mlx", action="store_true", help="skip the --smoke and --gpt-oss lines")
    args = parser.parse_args()

    build_corpus(args.adapters, args.layout_adapters)
    many = CORPUS / "many"
    configs = sorted(str(p) for p in many.glob("*/adapter_config.json"))
    layouts = {name: sorted(str(p) for p in (CORPUS / name).glob("*/adapter_config.json")) for name in ("peft", "vlm")}
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
    for name, layout_configs in layouts.items():
        commands[f"adapter-guard ({name} corpus)"] = [guard, str(CORPUS / name)]
        commands[f"check-json ({name} corpus)"] = [tool("check-json"), *layout_configs]
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
    print()
    print("  the other layouts (no target of their own; the corpus target is <= 5x):")
    for name, layout_configs in layouts.items():
        ours, theirs = med[f"adapter-guard ({name} corpus)"], med[f"check-json ({name} corpus)"]
        ours_cpu, theirs_cpu = med_cpu[f"adapter-guard ({name} corpus)"], med_cpu[f"check-json ({name} corpus)"]
        print(f"  {f'{name}: {len(layout_configs)} adapters, adapter-guard / check-json':<54} {ours / theirs:6.2f}x wall "
              f"({ours * 1000:.0f} / {theirs * 1000:.0f} ms), {ours_cpu / theirs_cpu:.2f}x CPU")
    print()
    print("  format detection, in-process (least of 5 serial runs; target <= 3 % of the lint):")
    for name in ("many", "peft", "vlm"):
        total, share = detection_share(CORPUS / name, 5)
        print(f"  {name:<8} lint {total * 1000:6.1f} ms CPU, detection {share * 100:4.1f} %: {verdict(share <= 0.03)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
