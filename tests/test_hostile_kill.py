"""Crashes and races: ``--fix`` killed with SIGKILL at random points, and two fixers on one tree.

Each file must end byte-for-byte as it was or exactly as one clean run
writes it, never in between. ``atomic_write`` makes that true by writing a
temporary file and renaming it over the config; a killed run may leave that
temporary file behind (nothing can clean up after SIGKILL). It is dot-named
and never named adapter_config.json, so the next run ignores it; the test
counts and removes them.
"""

from __future__ import annotations

import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostile import COMPLETE, preservation_problems, temp_files, write_adapter

CHILD = "import sys; from adapter_guard.cli import main; sys.exit(main(sys.argv[1:]))"
KILLS = 200

CONFIGS = {
    "missing-dropout": COMPLETE.replace('        "dropout": 0.0,\n', ""),
    "missing-lora-parameters": COMPLETE.replace(
        '    "lora_parameters": {\n        "rank": 8,\n        "dropout": 0.0,\n        "scale": 20.0\n    },\n', ""),
    "missing-num-layers-and-type": COMPLETE.replace('    "num_layers": -1,\n', "").replace('    "fine_tune_type": "lora",\n', ""),
    "crlf": COMPLETE.replace('        "dropout": 0.0,\n', "").replace("\n", "\r\n"),
    "one-line": '{"lora_parameters": {"rank": 8, "scale": 20.0}, "num_layers": -1, "fine_tune_type": "lora"}',
    "tabs": COMPLETE.replace("    ", "\t").replace('\t\t"dropout": 0.0,\n', ""),
    "raw-unicode": COMPLETE.replace("caf\\u00e9", "café").replace('        "dropout": 0.0,\n', ""),
    "large": COMPLETE.replace("[1, 2.50, 3e0]", "[" + ", ".join(f"{i}.0" for i in range(20_000)) + "]")
                     .replace('        "dropout": 0.0,\n', ""),
}


def build_tree(root: Path) -> dict[Path, bytes]:
    return {write_adapter(root / name, text): text.encode() for name, text in CONFIGS.items()}


def fix_process(root: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(root), "--fix"], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def restore(originals: dict[Path, bytes]) -> None:
    for path, data in originals.items():
        path.write_bytes(data)


@pytest.fixture
def tree(tmp_path):
    """The tree, its original bytes, and the bytes one clean ``--fix`` run leaves."""
    root = tmp_path / "tree"
    originals = build_tree(root)
    assert fix_process(root).wait() == 1  # AG204 (no provable scale) remains in one of them
    fixed = {path: path.read_bytes() for path in originals}
    for path, before in originals.items():
        assert fixed[path] != before
        assert preservation_problems(before, fixed[path], unsafe=False) == []
    restore(originals)
    return root, originals, fixed


def states(originals, fixed) -> list[str]:
    out = []
    for path, before in originals.items():
        now = path.read_bytes()
        out.append("original" if now == before else "fixed" if now == fixed[path] else f"TORN {path.parent.name}")
    return out


def test_sigkill_at_random_points_leaves_each_file_original_or_fully_fixed(tree):
    root, originals, fixed = tree
    durations = []
    for _ in range(3):
        start = time.perf_counter()
        fix_process(root).wait()
        durations.append(time.perf_counter() - start)
        restore(originals)
    typical = statistics.median(durations)

    rng = random.Random(6)
    kills = attempts = 0
    outcomes = {"none fixed": 0, "some fixed": 0, "all fixed": 0}
    litter = 0
    while kills < KILLS and attempts < 5 * KILLS:
        attempts += 1
        process = fix_process(root)
        # Anywhere in the run, weighted past the interpreter's start-up, where the writes happen.
        time.sleep(rng.uniform(0.2, 1.1) * typical)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        if process.wait() == -signal.SIGKILL:  # not when it finished between poll() and the signal
            kills += 1
            now = states(originals, fixed)
            assert all(s in ("original", "fixed") for s in now), now
            done = now.count("fixed")
            outcomes["none fixed" if done == 0 else "all fixed" if done == len(now) else "some fixed"] += 1
        else:
            assert states(originals, fixed) == ["fixed"] * len(originals)
        for leftover in temp_files(root):
            litter += 1
            leftover.unlink()
        restore(originals)

    print(f"{kills} kills in {attempts} runs (typical run {typical * 1000:.0f} ms): {outcomes}, "
          f"{litter} temporary files left by killed runs")
    assert kills >= KILLS
    assert outcomes["some fixed"] > 0  # kills did land between the writes of one run


def test_two_fixers_on_one_tree_end_as_one_run_would(tree):
    root, originals, fixed = tree
    for _ in range(10):
        first, second = fix_process(root), fix_process(root)
        assert (first.wait(), second.wait()) in {(0, 0), (0, 1), (1, 0), (1, 1)}
        assert states(originals, fixed) == ["fixed"] * len(originals)
        assert temp_files(root) == []
        restore(originals)


def test_a_run_after_a_killed_one_ignores_its_temporary_file(tree):
    root, originals, fixed = tree
    config = next(iter(originals))
    litter = config.parent / ".adapter_config.json.abc123.tmp"
    litter.write_bytes(fixed[config][: len(fixed[config]) // 2])  # what a kill mid-write leaves
    assert fix_process(root).wait() == 1
    assert states(originals, fixed) == ["fixed"] * len(originals)
    assert litter.exists()  # not ours to delete: another process may be writing it
