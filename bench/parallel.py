"""Where spreading the lint over processes starts to pay: serial vs forked, by file count.

    python bench/parallel.py [--repeat 5] [--counts 8,16,32,64,128,256,1001]

Uses the corpus of ``bench/run.py`` (build it first). For each count it makes
a tree of that many adapters (hard links, so the sparse weights cost no disk)
and runs ``adapter-guard`` on it in a fresh process with the worker count
forced: 1 (serial) and 2 (this process and one forked child), on both cores,
and pinned to one core with ``taskset -c 0`` (what a one-core CI runner is;
the engine itself then uses one worker, because it counts the usable cores
with ``sched_getaffinity``). Prints median wall and CPU milliseconds.

With more cores than this 2-core machine has, the forked split scales the
per-file work (about 0.2 ms per adapter here) over the cores while the start-up
(the interpreter and imports, about 40 ms, plus about 1 ms per fork) stays;
that is an extrapolation, not a measurement.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / ".corpus"

CHILD = """
import sys
from adapter_guard import engine
workers = int(sys.argv[1])
engine._workers = lambda count, settings: workers
from adapter_guard.cli import main
main(sys.argv[2:])
"""


def subset(count: int) -> Path:
    target = CORPUS / "subsets" / str(count)
    if target.exists():
        return target
    sources = sorted((CORPUS / "many").iterdir())[:count]
    for source in sources:
        (target / source.name).mkdir(parents=True)
        for file in source.iterdir():
            os.link(file, target / source.name / file.name)
    return target


# With the bytecode cached, as after a normal install (see bench/run.py).
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--counts", default="8,16,32,64,128,256,1001")
    args = parser.parse_args()
    if not (CORPUS / "many").exists():
        raise SystemExit("build the corpus first: python bench/run.py")
    taskset = shutil.which("taskset")
    print(f"{os.cpu_count()} cores; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'adapters':>8}  {'cores':>5}  {'serial ms (CPU)':>17}  {'2 workers ms (CPU)':>19}  forked/serial")
    for count in (int(c) for c in args.counts.split(",")):
        tree = str(subset(count))
        for cores in ([2, 1] if taskset else [2]):
            pin = [taskset, "-c", "0"] if cores == 1 else []
            runs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
            timed([*pin, sys.executable, "-c", CHILD, "1", tree])  # warm the caches
            for round_ in range(args.repeat):
                for workers in (1, 2) if round_ % 2 == 0 else (2, 1):
                    runs[workers].append(timed([*pin, sys.executable, "-c", CHILD, str(workers), tree]))
            wall = {w: statistics.median(r[0] for r in runs[w]) * 1000 for w in runs}
            cpu = {w: statistics.median(r[1] for r in runs[w]) * 1000 for w in runs}
            print(f"{count:>8}  {cores:>5}  {wall[1]:8.0f} ({cpu[1]:5.0f})  {wall[2]:9.0f} ({cpu[2]:5.0f})  "
                  f"{wall[2] / wall[1]:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
