"""Old mlx-lm releases as oracles for the mlx-lm target: one venv per release, one stock load per call.

``load_logits(release, base_dir, adapter_dir)`` runs ``mlx_lm.load(base, adapter_path=...)`` of that
release (``None``: the mlx-lm installed here, 0.32.2) in a fresh interpreter and returns what
happened: the logits on a fixed token batch, or the exception. The old releases install with
``--no-deps`` on this environment's mlx and transformers (``runtime_venvs``, inherit=True).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import runtime_venvs

#: The last release before each boundary the profile draws (0.19, 0.21.5, 0.28.3, 0.32).
MLX_LM_0_18 = "mlx-lm==0.18.2"
MLX_LM_0_21 = "mlx-lm==0.21.4"
MLX_LM_0_28 = "mlx-lm==0.28.2"
MLX_LM_0_31 = "mlx-lm==0.31.3"

TOKENS = [[5, 9, 17, 33, 12, 40, 7, 21], [60, 4, 28, 11, 50, 6, 19, 42]]

# Run by the release under test: its own stock loader, nothing else.
_LOAD = """
import json, sys
import numpy as np
import mlx.core as mx
from mlx_lm import load
base, adapter, tokens = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
try:
    model, _ = load(base, adapter_path=adapter)
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "logits": None}))
    raise SystemExit(0)
model.eval()
out = model(mx.array(tokens, dtype=mx.int32))
out = out[0] if isinstance(out, tuple) else out
print(json.dumps({"error": None, "logits": np.array(out.astype(mx.float32)).tolist()}))
"""


@dataclass(frozen=True)
class Load:
    error: str | None
    logits: np.ndarray | None

    @property
    def loaded(self) -> bool:
        return self.error is None


def release_python(requirement: str | None) -> Path:
    """The interpreter of ``requirement``'s venv (None: this one)."""
    if requirement is None:
        return Path(sys.executable)
    python = runtime_venvs.runtime_python((requirement,), inherit=True)
    _see_every_site_dir(python)
    version = runtime_venvs.installed_version(python, "mlx-lm")
    assert f"mlx-lm=={version}" == requirement, f"{python} imports mlx-lm {version}, not {requirement}"
    return python


def _see_every_site_dir(python: Path) -> None:
    """runtime_venvs hands the venv this interpreter's own purelib; a worktree venv reaches the shared
    packages (mlx, transformers) through a .pth of its own, which Python does not follow a second
    time, so list every site-packages directory on sys.path instead."""
    pth = next(python.parent.parent.glob("lib/python*/site-packages")) / "zz_inherit_test_env.pth"
    dirs = [d for d in sys.path if d.endswith("site-packages")]
    if pth.read_text().split() != dirs:
        pth.write_text("\n".join(dirs) + "\n")


def load_logits(requirement: str | None, base_dir: Path, adapter_dir: Path) -> Load:
    out = runtime_venvs.run_json(release_python(requirement), _LOAD, str(base_dir), str(adapter_dir), json.dumps(TOKENS))
    return Load(out["error"], None if out["logits"] is None else np.array(out["logits"], dtype=np.float32))


def max_diff(a: Load, b: Load) -> float:
    assert a.loaded and b.loaded, (a.error, b.error)
    return float(np.max(np.abs(a.logits - b.logits)))
