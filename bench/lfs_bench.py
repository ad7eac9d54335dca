"""What linting a pointer-only checkout costs: the per-adapter overhead of fetching headers over Git LFS.

    python bench/lfs_bench.py [--repeat 5] [--adapters 100]

Needs git-lfs (``apt-get install git-lfs``). It builds, under ``bench/.corpus/lfs``:

- ``full/``: N adapters written like ``bench/run.py``'s (256 tensors, an
  ``mlx_lm.lora`` config), each with 4 MiB of tensor data and its own LFS object, in a git repository
  whose ``.lfsconfig`` names the LFS server;
- ``pointers/``: the same repository with every ``adapters.safetensors``
  replaced by the pointer ``git lfs pointer`` writes for it, as a checkout
  without LFS objects has it.

The objects are served by the test suite's LFS stand-in (``tests/lfs_server.py``)
on 127.0.0.1, with and without Range support. Then it times, alternating in
every round, ``adapter-guard`` on the full checkout and ``adapter-guard
--lfs-headers`` on the pointers, and prints the medians, the overhead per
adapter, and the bytes and requests each adapter cost. The server is local, so
the figure is the client's own cost; over the internet add two round trips per
object (the batch request, then the two Range reads on one host: three in all).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / ".corpus" / "lfs"  # rebuilt on every run
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from lfs_server import LfsServer  # noqa: E402
from run import write_adapter  # noqa: E402

def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def build(count: int, server: LfsServer) -> tuple[Path, Path]:
    full, pointers = CORPUS / "full", CORPUS / "pointers"
    shutil.rmtree(CORPUS, ignore_errors=True)
    for root in (full, pointers):
        root.mkdir(parents=True)
        git(root, "init", "-q")
        git(root, "config", "--file", ".lfsconfig", "lfs.url", server.url)
    for i in range(count):
        directory = full / "adapters" / f"adapter-{i:04d}"
        # 32 layers x 4 modules x (lora_a, lora_b) = 256 tensors of 512 x 8 F32: 4 MiB of data
        write_adapter(directory, layers=32, hidden=512, rank=8)
        weights = directory / "adapters.safetensors"
        data = bytearray(weights.read_bytes())
        data[-4:] = i.to_bytes(4, "little")  # one distinct LFS object per adapter
        weights.write_bytes(data)
        server.add(bytes(data))
        target = pointers / "adapters" / directory.name
        target.mkdir(parents=True)
        shutil.copy(directory / "adapter_config.json", target / "adapter_config.json")
        pointer = subprocess.run(["git", "lfs", "pointer", f"--file={weights}"], capture_output=True, check=True).stdout
        (target / "adapters.safetensors").write_bytes(pointer)
    return full, pointers


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-800:]}{proc.stderr[-800:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--adapters", type=int, default=100)
    args = parser.parse_args()
    if shutil.which("git-lfs") is None:
        raise SystemExit("git-lfs is not installed (apt-get install git-lfs)")

    server = LfsServer()
    try:
        full, pointers = build(args.adapters, server)
        guard = str(BIN / "adapter-guard")
        times: dict[str, list[float]] = {"full checkout": [], "pointers, Range": [], "pointers, no Range": []}
        sent: dict[str, int] = {}
        requests: dict[str, int] = {}
        for _ in range(args.repeat):
            times["full checkout"].append(timed([guard, "."], full))
            for label, ranges in (("pointers, Range", True), ("pointers, no Range", False)):
                server.reset()
                server.range_support = ranges
                times[label].append(timed([guard, "--lfs-headers", "."], pointers))
                time.sleep(0.05)  # let the server's threads count what they wrote
                sent[label] = sum(server.sent.values())
                requests[label] = len(server.requests)
        n = args.adapters
        medians = {label: statistics.median(values) for label, values in times.items()}
        object_bytes = sum(len(d) for d in server.objects.values())
        print(f"{n} adapters x 256 tensors, {object_bytes / n / 2**20:.1f} MiB per object, "
              f"median of {args.repeat} (LFS server on 127.0.0.1)\n")
        print("| run | median | per adapter | bytes per adapter | requests per adapter |")
        print("| --- | --- | --- | --- | --- |")
        base = medians["full checkout"]
        print(f"| `adapter-guard` on the full checkout | {base * 1000:.0f} ms | {base / n * 1000:.2f} ms | | |")
        for label in ("pointers, Range", "pointers, no Range"):
            overhead = (medians[label] - base) / n * 1000
            print(f"| `adapter-guard --lfs-headers` on the {label} | {medians[label] * 1000:.0f} ms | "
                  f"+{overhead:.2f} ms | {sent[label] / n:,.0f} | {requests[label] / n:g} |")
        header = 8 + int.from_bytes(next(iter(server.objects.values()))[:8], "little")
        print(f"\nOne header is {header:,} bytes (8 + N). Without Range the server starts sending the whole "
              "object and the client closes after 8 + N bytes; 'bytes per adapter' counts what the server "
              "got into the socket before that.")
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
