"""Build a base model from a local config and reload an adapter with stock mlx-lm.

Shared by the ``--smoke`` reload test and the ``--gpt-oss`` regression.
Imports mlx and mlx_lm inside the functions, never at module import time.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def build_model(config: dict[str, Any], seed: int = 0):
    """An mlx-lm model for ``config`` (a ``config.json`` dict) with seeded random weights."""
    import mlx.core as mx
    from mlx_lm.utils import _get_classes

    model_cls, args_cls = _get_classes(config)
    mx.random.seed(seed)
    model = model_cls(args_cls.from_dict(config))
    mx.eval(model.parameters())
    model.eval()
    return model


def has_weights(base_dir: str | Path) -> bool:
    """Whether ``base_dir`` holds weights mlx-lm would load (``model*.safetensors``).

    Not any ``*.safetensors``: an adapter directory with a copied ``config.json``
    holds ``adapters.safetensors``, which is no base model.
    """
    return any(Path(base_dir).glob("model*.safetensors"))


def load_base(base_dir: str | Path, seed: int = 0):
    """Load a base model from a local directory.

    Returns ``(model, config, random_weights)``. Weights are loaded when the
    directory has ``model*.safetensors``; otherwise the architecture is built
    from ``config.json`` with seeded random weights, which is enough for
    shape-level and delta-level checks.
    """
    base_dir = Path(base_dir)
    config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    if has_weights(base_dir):
        from mlx_lm.utils import load_model

        model, config = load_model(base_dir, strict=False)
        model.eval()
        return model, config, False
    return build_model(config, seed), config, True


def reload_adapter(model, adapter_dir: str | Path):
    """Apply an adapter with stock ``mlx_lm.tuner.utils.load_adapters``, then ``eval()``.

    Upstream leaves the model in training mode after the load, so dropout
    would run at inference; adapter-guard always switches to eval mode.
    """
    from mlx_lm.tuner.utils import load_adapters

    with compatible_from_base():
        model = load_adapters(model, str(adapter_dir))
    model.eval()
    return model


# -- older mlx-lm: from_base without scale= / dropout= ----------------------------------


def lora_classes() -> tuple[type, ...]:
    """The mlx-lm classes whose ``from_base`` stock ``load_adapters`` calls."""
    from mlx_lm.tuner.dora import DoRAEmbedding, DoRALinear
    from mlx_lm.tuner.lora import LoRAEmbedding, LoRALinear, LoRASwitchLinear

    return LoRALinear, LoRASwitchLinear, LoRAEmbedding, DoRALinear, DoRAEmbedding


def missing_from_base_keywords(cls: type) -> tuple[str, ...]:
    """Which of ``scale`` / ``dropout`` ``cls.from_base`` does not accept."""
    try:
        params = inspect.signature(cls.from_base).parameters
    except (TypeError, ValueError):
        return ()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return ()
    return tuple(name for name in ("scale", "dropout") if name not in params)


def _from_base_shim(original, missing: tuple[str, ...]):
    """Call an old ``from_base`` with what it accepts, then set the rest on the module."""

    def from_base(layer, r: int = 8, dropout: float = 0.0, scale: float = 20.0):
        import mlx.nn as nn

        accepted = {"scale": scale, "dropout": dropout}
        for name in missing:
            del accepted[name]
        module = original(layer, r, **accepted)
        # scale is a plain attribute and dropout a parameter-free module, so
        # neither comes back through load_weights: set them here.
        if "scale" in missing:
            module.scale = scale
        if "dropout" in missing:
            module.dropout = nn.Dropout(p=dropout)
        return module

    return staticmethod(from_base)


@contextlib.contextmanager
def compatible_from_base() -> Iterator[None]:
    """Let stock ``load_adapters`` run against an mlx-lm whose ``from_base`` lacks ``scale``/``dropout``.

    Only classes whose signature actually lacks a keyword are touched, and
    only for the duration of the block; with a current mlx-lm this is a no-op.
    """
    _unset = object()
    patched: list[tuple[type, Any]] = []
    try:
        for cls in lora_classes():
            missing = missing_from_base_keywords(cls)
            if not missing:
                continue
            patched.append((cls, cls.__dict__.get("from_base", _unset)))
            cls.from_base = _from_base_shim(cls.from_base, missing)
        yield
    finally:
        for cls, original in reversed(patched):
            if original is _unset:
                del cls.from_base
            else:
                cls.from_base = original


# -- finding a base model without the network --------------------------------------------

# ``org/name``, as the Hugging Face Hub spells repository ids.
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class BaseModelSource:
    """A local directory holding a base model's ``config.json``."""

    path: Path
    #: How it was found: "--base-model", "local directory" or "Hugging Face cache".
    origin: str
    #: Whether ``model*.safetensors`` sit beside the config.
    has_weights: bool

    def describe(self) -> str:
        weights = "its weights" if self.has_weights else "seeded random weights (config.json only)"
        return f"base {self.path} ({self.origin}), {weights}"


def resolve_base_model(
    config: Mapping[str, Any], adapter_dir: str | Path, base_model: str | Path | None = None
) -> tuple[BaseModelSource | None, str]:
    """Find the base model locally; never touches the network.

    In order: ``--base-model DIR``; else the config's ``base_model_name_or_path``
    or ``model`` as a local directory (relative to the working directory, then
    to the adapter directory); else as a snapshot already in the Hugging Face
    cache. Returns the source (or None) and a one-line reason when there is none.
    """
    if base_model is not None:
        path = Path(base_model).expanduser()
        if (path / "config.json").is_file():
            return BaseModelSource(path, "--base-model", has_weights(path)), ""
        return None, f"--base-model {path} has no config.json"

    names = [config.get(key) for key in ("base_model_name_or_path", "model")]
    names = [n for n in names if isinstance(n, str) and n.strip()]
    if not names:
        return None, "no --base-model, and the config names no base model (base_model_name_or_path or model)"
    for name in names:
        for path in (Path(name).expanduser(), Path(adapter_dir) / name):
            if (path / "config.json").is_file():
                return BaseModelSource(path, "local directory", has_weights(path)), ""
        snapshot = cached_snapshot(name)
        if snapshot is not None:
            return BaseModelSource(snapshot, "Hugging Face cache", has_weights(snapshot)), ""
    shown = " or ".join(repr(n) for n in dict.fromkeys(names))
    return None, f"{shown} is neither a local directory nor a snapshot in the local Hugging Face cache"


def cached_snapshot(repo_id: str) -> Path | None:
    """The local snapshot directory of ``repo_id`` holding ``config.json``, if cached.

    Looks at ``refs/main`` first (``try_to_load_from_cache``, a pure file
    lookup), then at any snapshot that has a ``config.json``, newest first.
    """
    if not _REPO_ID_RE.match(repo_id) or ".." in repo_id:
        return None
    try:
        from huggingface_hub import constants, try_to_load_from_cache
    except ImportError:
        return None
    # Read the variable now: huggingface_hub resolves it once, at its import.
    cache = Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE)
    try:
        found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache)
    except Exception:  # a malformed id or an unreadable cache is simply "not cached"
        found = None
    if isinstance(found, str):
        return Path(found).parent
    snapshots = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    try:
        candidates = [p for p in snapshots.iterdir() if (p / "config.json").is_file()]
    except OSError:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None
