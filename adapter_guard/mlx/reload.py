"""Build a base model from a local config and reload an adapter with stock mlx-lm.

Shared by the ``--smoke`` reload test and the ``--gpt-oss`` regression.
Imports mlx and mlx_lm inside the functions, never at module import time.
"""

from __future__ import annotations

import json
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


def load_base(base_dir: str | Path, seed: int = 0):
    """Load a base model from a local directory.

    Returns ``(model, config, random_weights)``. Weights are loaded when the
    directory has ``*.safetensors``; otherwise the architecture is built from
    ``config.json`` with seeded random weights, which is enough for shape-level
    and delta-level checks.
    """
    base_dir = Path(base_dir)
    config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    if any(base_dir.glob("*.safetensors")):
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

    model = load_adapters(model, str(adapter_dir))
    model.eval()
    return model
