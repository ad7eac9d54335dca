"""Time the gpt-oss regression on the built-in tiny config, as a user would pay for it.

Each run is a fresh interpreter (imports are most of the cost), timed from the
outside (wall time) and from the inside (import vs. regression). Prints the
median of ``--runs`` runs.

    python bench/gpt_oss_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

#: Runs in the child: import what --gpt-oss imports, then the regression.
CHILD = """
import json, time
t0 = time.perf_counter()
import mlx.core, mlx_lm.models.gpt_oss, mlx_lm.tuner.utils
from adapter_guard.mlx.gpt_oss import gpt_oss_findings
t1 = time.perf_counter()
findings, lines = gpt_oss_findings(None, None, base_model=None)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "regression": t2 - t1, "findings": len(findings), "lines": lines}))
"""

#: Interpreter start-up alone, to separate it from the imports.
EMPTY = "pass"

#: What a user types: ``adapter-guard --gpt-oss DIR`` on a directory without adapters.
CLI = "import sys; from adapter_guard.cli import main; sys.exit(main(['--gpt-oss', sys.argv[1]]))"


def timed(code: str, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    startup = statistics.median(timed(EMPTY)[0] for _ in range(args.runs))
    walls, imports, regressions = [], [], []
    for _ in range(args.runs):
        wall, out = timed(CHILD)
        inside = json.loads(out)
        walls.append(wall)
        imports.append(inside["import"])
        regressions.append(inside["regression"])

    with tempfile.TemporaryDirectory() as empty:
        cli = statistics.median(timed(CLI, empty)[0] for _ in range(args.runs))

    wall, imp, reg = (statistics.median(x) for x in (walls, imports, regressions))
    print("gpt-oss regression, built-in tiny config (5 scenarios, window 16), median of", args.runs, "runs")
    for line in inside["lines"]:
        print("  " + line)
    print(f"  findings: {inside['findings']}")
    print(f"  wall time          {wall:6.2f} s")
    print(f"  interpreter start  {startup:6.2f} s")
    print(f"  imports            {imp:6.2f} s  ({(startup + imp) / wall:.0%} of wall with start-up)")
    print(f"  regression         {reg:6.2f} s  ({reg / wall:.0%} of wall)")
    print(f"  adapter-guard --gpt-oss (built-in run, CLI wall time)  {cli:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
