"""Fuzz the adapter-guard CLI with generated adapters, valid and broken; print how many ran and failed.

    python bench/fuzz.py [--examples 10000] [--seed 0] [--keep DIR]

Each example is one adapter directory built by the generators in
``tests/hostile.py`` (the ones the hypothesis suite draws from, here fed by a
seeded ``random.Random``): a config (well-formed, then duplicated keys, BOMs,
cuts, byte flips, NaN, huge numbers, wrong types for every known field), an
``adapters.safetensors`` (valid LoRA/DoRA/switch layouts, then corrupt
lengths, offsets, dtypes, shapes, metadata, bytes), sometimes a base
``config.json`` and pickle files, and random flags and output format.

The real CLI runs in-process on it, and ``hostile.judge`` lists every broken
promise: an exit code other than 0/1, a traceback, a malformed report, a
config changed without ``--fix``, a fixed file that does not parse, dropped a
key or respelled an untouched value, a second ``--fix`` that changes it again,
or a temporary file left behind. Example ``i`` of seed ``s`` is always the
same, so a failure is replayed with ``--seed s --first i --examples 1``.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hostile import RandomDraw, gen_example  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0, help="index of the first example (to replay one)")
    parser.add_argument("--keep", type=Path, help="copy each failing example's directory here")
    args = parser.parse_args(argv)

    failures: list[tuple[int, list[str]]] = []
    exit_codes: collections.Counter = collections.Counter()
    problems_seen: collections.Counter = collections.Counter()
    start = time.perf_counter()
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="adapter-guard-fuzz-") as tmp:
        os.chdir(tmp)  # the CLI's repository root: no pyproject.toml above it changes the settings
        try:
            for index in range(args.first, args.first + args.examples):
                example = gen_example(RandomDraw(random.Random(f"{args.seed}:{index}")))
                directory = Path(tmp) / f"example-{index}"
                try:
                    problems = example.judge(directory)
                except Exception as exc:  # the oracle itself must not hide a crash
                    problems = [f"exception: {type(exc).__name__}: {exc}"]
                writes = "--fix" in example.args and "--diff" not in example.args
                changed = (directory / "adapter_config.json").read_bytes() != example.config
                exit_codes["fixed" if writes and changed else "untouched"] += 1
                if problems:
                    failures.append((index, problems))
                    problems_seen.update(p.split(":")[0] for p in problems)
                    if args.keep:
                        shutil.copytree(directory, args.keep / f"seed{args.seed}-example-{index}", dirs_exist_ok=True)
                shutil.rmtree(directory, ignore_errors=True)
        finally:
            os.chdir(previous)
    elapsed = time.perf_counter() - start

    for index, problems in failures[:20]:
        print(f"FAILED example {index} (replay: --seed {args.seed} --first {index} --examples 1)")
        for problem in problems[:5]:
            print(f"    {problem}")
    print(f"configs fixed on disk: {exit_codes['fixed']}, left untouched: {exit_codes['untouched']}")
    if problems_seen:
        print("problems: " + ", ".join(f"{kind} x{n}" for kind, n in problems_seen.most_common()))
    print(f"fuzz: {args.examples} examples ran, {len(failures)} failed, seed {args.seed}, {elapsed:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
