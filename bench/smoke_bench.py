"""Time ``adapter-guard --smoke`` on a tiny adapter, and the share of it spent importing mlx_lm.

Each run is a fresh interpreter, as a user (or pre-commit) pays for it:

- ``adapter-guard --smoke --base-model BASE ADAPTER``, timed from the outside;
- the same smoke in a child that times, from the inside, importing what the
  smoke imports (mlx, mlx_lm's loader, tuner and model class) and the smoke itself.

The adapter is a 4-layer llama (hidden 32) with LoRA on q/v, saved once with
``save_adapters`` into a temporary directory. Prints medians of ``--runs``.

    python bench/smoke_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent

SETUP = """
import json, sys
from pathlib import Path
from mlx_lm.tuner.utils import linear_to_lora_layers
import mlx.core as mx
from adapter_guard.mlx.reload import build_model
from adapter_guard.mlx.save import save_adapters

root = Path(sys.argv[1])
config = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4,
          "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "vocab_size": 64,
          "tie_word_embeddings": True}
(root / "base").mkdir()
(root / "base" / "config.json").write_text(json.dumps(config))
model = build_model(config)
model.freeze()
linear_to_lora_layers(model, 2, {"rank": 4, "scale": 2.0, "dropout": 0.1, "keys": ["self_attn.q_proj", "self_attn.v_proj"]})
mx.random.seed(1)
for _, m in model.named_modules():
    if "lora_b" in m:
        m.lora_b = mx.random.normal(m.lora_b.shape) * 0.5
save_adapters(model, root / "adapter", {"model": str(root / "base")})
"""

#: Runs in the child: import what --smoke imports, then the smoke.
CHILD = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
import mlx.core, mlx_lm.utils, mlx_lm.tuner.utils, mlx_lm.models.llama
t1 = time.perf_counter()
from adapter_guard.mlx.smoke import run_smoke
path = Path(sys.argv[1]) / "adapter" / "adapter_config.json"
result = run_smoke(path, json.loads(path.read_text()))
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "smoke": t2 - t1, "findings": [f.code for f in result.findings]}))
"""


def timed(args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    return time.perf_counter() - start, done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="smoke-bench-") as tmp:
        subprocess.run([sys.executable, "-c", SETUP, tmp], check=True)
        cli = [str(BIN / "adapter-guard"), "--smoke", "--base-model", f"{tmp}/base", f"{tmp}/adapter"]
        startup = statistics.median(timed([sys.executable, "-c", "pass"])[0] for _ in range(args.runs))
        cli_walls, child_walls, imports, smokes = [], [], [], []
        for _ in range(args.runs):
            wall, done = timed(cli)
            if done.returncode != 0:
                print(done.stdout + done.stderr, file=sys.stderr)
                return 1
            cli_walls.append(wall)
            wall, done = timed([sys.executable, "-c", CHILD, tmp])
            inside = json.loads(done.stdout)
            child_walls.append(wall)
            imports.append(inside["import"])
            smokes.append(inside["smoke"])

    cli_wall, wall, imp, smoke = (statistics.median(x) for x in (cli_walls, child_walls, imports, smokes))
    print(f"--smoke, tiny llama (4 layers, hidden 32, LoRA q/v on 2 layers), median of {args.runs} runs")
    print(f"  findings: {inside['findings'] or 'none'}")
    print(f"  adapter-guard --smoke wall   {cli_wall:6.2f} s")
    print(f"  in-process child wall        {wall:6.2f} s")
    print(f"  interpreter start            {startup:6.2f} s")
    print(f"  importing mlx + mlx_lm       {imp:6.2f} s  ({imp / wall:.0%} of child wall)")
    print(f"  smoke (build, reload, check) {smoke:6.2f} s  ({smoke / wall:.0%} of child wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
