"""mlx-lm before 0.19 (``lora_layers``, ``use_dora``) and mlx-examples' ``adapters.npz``. Pure.

mlx-lm 0.19 renamed ``lora_layers`` to ``num_layers`` and ``use_dora`` to
``fine_tune_type``; otherwise the files are mlx-lm's, so mlx-lm's rules run on
them, with the missing ``num_layers`` told in the old file's words.
"""

from __future__ import annotations

from ..findings import Finding, Fix
from ..infer import AdapterShape
from ..readers import MLX_WEIGHTS, NPZ_WEIGHTS
from ..registry import SAFE
from . import mlx_lm
from .shared import Emitter, Inputs, is_int


def run_rules(inputs: Inputs, path: str) -> list[Finding]:
    findings = mlx_lm.run_rules(inputs, path)
    config = inputs.config
    if "lora_layers" not in config or "num_layers" in config:
        return findings
    # mlx-lm's "num_layers is missing" is told here in the old file's words, with its value.
    findings = [f for f in findings if f.code not in ("AG301", "AG303")]
    emit = Emitter(path)
    _lora_layers_rule(inputs, emit)
    return findings + emit.findings


def _lora_layers_rule(inputs: Inputs, emit: Emitter) -> None:
    value = inputs.config["lora_layers"]
    head = f"lora_layers is {value!r} but num_layers is missing (mlx-lm 0.19 renamed it; current mlx-lm raises AttributeError)"
    if not is_int(value) or (value <= 0 and value != -1):
        emit("AG811", f"{head}; {value!r} is not a layer count, so set num_layers by hand", ("lora_layers",))
        return
    why = _disagreement(value, inputs.shape, inputs.total_layers)
    if why is not None:
        emit("AG811", f"{head}; not copied: {why}", ("lora_layers",))
        return
    fix = Fix(SAFE, ((("num_layers",), value),), f"set num_layers to {value} (from lora_layers)")
    emit("AG811", f"{head}; the tensors agree: num_layers = {value}", ("lora_layers",), fix)


def _disagreement(value: int, shape: AdapterShape | None, total: int | None) -> str | None:
    """Why the tensors contradict ``num_layers = value``, or None when they agree."""
    if shape is None:
        return "the weights cannot be read"
    indices = shape.all_layer_indices
    if not indices or value == -1:
        return None
    lo, hi = min(indices), max(indices)
    if total is not None:
        if hi >= total or lo < max(total - value, 0):
            return f"layers {lo}..{hi} have tensors, outside the last {value} of {total}"
        return None
    if hi - lo + 1 > value:
        return f"layers {lo}..{hi} have tensors, more than {value} consecutive layers"
    return None


def npz_rule(entries: dict[str, bool], emit: Emitter) -> None:
    """AG821 when the weights exist only as mlx-examples' adapters.npz."""
    if NPZ_WEIGHTS in entries and MLX_WEIGHTS not in entries:
        emit(
            "AG821",
            f"`{NPZ_WEIGHTS}` (mlx-examples / mlx-lm before 0.6) is the only weights file: current mlx-lm reads only "
            f"`{MLX_WEIGHTS}` with an adapter_config.json; convert it (see `adapter-guard --explain AG821`)",
        )
