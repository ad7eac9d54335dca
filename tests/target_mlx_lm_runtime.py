"""Old mlx-lm releases as oracles for the mlx-lm target: one venv per release, one stock load per call.

``load_many(release, [(base_dir, adapter_dir), ...])`` runs ``mlx_lm.load(base, adapter_path=...)`` of
that release (``None``: the mlx-lm installed here, 0.32.2) in one fresh interpreter, once per pair, and
returns what happened to each: the logits on a fixed token batch, or the exception, and which tensors
the release dropped or took with another shape. The old releases install with
``--no-deps`` on this environment's mlx and transformers (``runtime_venvs``, inherit=True).
"""

from __future__ import annotations

import functools
import json
import os
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
#: The last release before the adapter folder (0.6), and before DoRA (0.13.1).
MLX_LM_0_5 = "mlx-lm==0.5.0"
MLX_LM_0_13 = "mlx-lm==0.13.0"

TOKENS = [[5, 9, 17, 33, 12, 40, 7, 21], [60, 4, 28, 11, 50, 6, 19, 42]]

# Run by the release under test: its own stock loader. A spy on Module.load_weights notes the
# parameters the release built just before the adapter's weights go in (the last call), so the
# answer also says which tensors had no parameter to go to and which went in with another shape.
_LOAD = """
import json, sys
import numpy as np
import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten
from mlx_lm import load
jobs, tokens = json.loads(sys.argv[1]), json.loads(sys.argv[2])
built = {}
stock_load_weights = nn.Module.load_weights
def spy(self, *args, **kwargs):
    built.clear()
    built.update({k: tuple(v.shape) for k, v in tree_flatten(self.parameters())})
    return stock_load_weights(self, *args, **kwargs)
nn.Module.load_weights = spy
def one(base, adapter, by_file):
    answer = {"error": None, "forward_error": None, "logits": None, "dropped": [], "misshapen": []}
    where = {"adapter_file": f"{adapter}/adapters.safetensors"} if by_file else {"adapter_path": adapter}
    try:
        model, _ = load(base, **where)
    except Exception as exc:
        answer["error"] = f"{type(exc).__name__}: {exc}"
        return answer
    # Before 0.6 the adapter goes in by Module.update, not load_weights: nothing to compare.
    for name, w in ({} if by_file else mx.load(f"{adapter}/adapters.safetensors")).items():
        if name not in built:
            answer["dropped"].append(name)
        elif tuple(w.shape) != built[name]:
            answer["misshapen"].append(name)
    model.eval()
    try:
        out = model(mx.array(tokens, dtype=mx.int32))
        out = out[0] if isinstance(out, tuple) else out
        answer["logits"] = np.array(out.astype(mx.float32)).tolist()
    except Exception as exc:
        answer["forward_error"] = f"{type(exc).__name__}: {exc}"
    return answer
print(json.dumps([one(base, adapter, by_file) for base, adapter, by_file in jobs]))
"""


@dataclass(frozen=True)
class Load:
    """What one release's ``mlx_lm.load`` did with an adapter, and what the model then computed."""

    error: str | None
    logits: np.ndarray | None
    #: Tensors of the file that no parameter of the built model took (strict=False dropped them).
    dropped: tuple[str, ...] = ()
    #: Tensors that went into a parameter of another shape (strict=False does not check shapes).
    misshapen: tuple[str, ...] = ()
    #: The exception of the forward pass after a load that went through.
    forward_error: str | None = None

    @property
    def loaded(self) -> bool:
        return self.error is None


@functools.lru_cache(maxsize=None)
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
    if pth.read_text().split() != dirs:  # written whole, then renamed: xdist workers may race here
        tmp = pth.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("\n".join(dirs) + "\n")
        os.replace(tmp, pth)


def load_many(requirement: str | None, jobs: list[tuple[Path, Path]], *, by_file: bool = False) -> list[Load]:
    """One interpreter of ``requirement`` loads each ``(base_dir, adapter_dir)`` afresh, in order.

    ``by_file``: mlx-lm before 0.6 has no adapter folder; it is given ``adapter_file=`` the weights file.
    """
    pairs = json.dumps([[str(base), str(adapter), by_file] for base, adapter in jobs])
    answers = runtime_venvs.run_json(release_python(requirement), _LOAD, pairs, json.dumps(TOKENS))
    return [_load(a) for a in answers]


def _load(out: dict) -> Load:
    logits = None if out["logits"] is None else np.array(out["logits"], dtype=np.float32)
    dropped, misshapen = tuple(sorted(out["dropped"])), tuple(sorted(out["misshapen"]))
    return Load(out["error"], logits, dropped, misshapen, out["forward_error"])


def max_diff(a: Load, b: Load) -> float:
    assert a.logits is not None and b.logits is not None, (a.error or a.forward_error, b.error or b.forward_error)
    return float(np.max(np.abs(a.logits - b.logits)))
