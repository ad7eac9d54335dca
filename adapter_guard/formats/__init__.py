"""The rules, one module of pure functions per adapter format.

``detect`` decides the format from what was read; ``lint_config`` and
``lint_lone_weights`` then run that format's rules and no other's, so a
finding speaks the format's words and a fix writes only its keys.

- ``shared``: the JSON document, the files beside it, value checks, base widths;
- ``mlx_lm``: mlx-lm (and unsloth's MLX adapters);
- ``mlx_lm_legacy``: mlx-lm before 0.19, and mlx-examples' adapters.npz;
- ``mlx_vlm``: mlx-vlm, both schemas;
- ``peft``: Hugging Face PEFT LoRA;
- ``conversions``: MLX files whose factors are in PEFT's orientation.

None of them reads a file: ``adapter_guard.readers`` does that.
"""

from __future__ import annotations

from ..findings import Finding
from ..readers import MLX_WEIGHTS, NPZ_WEIGHTS, AdapterFiles
from . import mlx_lm, mlx_lm_legacy, mlx_vlm
from .conversions import mlx_widths, transposed_rule
from .detect import AdapterFormat, Detection, detect
from .shared import Emitter, Inputs, base_width_rules

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the lint path
if TYPE_CHECKING:
    from typing import Any

__all__ = ["AdapterFormat", "Detection", "detect", "lint_config", "lint_lone_weights"]


def lint_config(
    config: dict[str, Any],
    files: AdapterFiles,
    path: str,
    *,
    base: dict[str, Any] | None = None,
    total_layers: int | None = None,
    base_source: str | None = None,
    no_base_reason: str = "",
    base_modules: dict[str, frozenset[str]] | None = None,
) -> tuple[Detection, list[Finding]]:
    """The format of one adapter and every finding its format's rules make."""
    detection = detect(config, files)
    emit = Emitter(path)
    fmt = detection.format
    if fmt is AdapterFormat.UNKNOWN:
        emit("AG008", f"cannot tell this adapter's format: {detection.evidence}; {detection.decider}")
    elif fmt is AdapterFormat.PEFT_OTHER:
        emit("AG009", f"{detection.evidence}: not a LoRA adapter, so no LoRA check runs")
    elif fmt is AdapterFormat.PEFT_LORA:
        from . import peft  # imported when a PEFT adapter is met: its pattern timer needs signal and threading

        shapes = peft.weights_rules(files, emit)
        peft.run_rules(config, shapes, emit, base)
    elif fmt is AdapterFormat.MLX_VLM:
        mlx_vlm.run_rules(config, files, emit, base)
    elif fmt is AdapterFormat.MLX_VLM_LEGACY:
        mlx_vlm.run_legacy_rules(config, files, emit, base)
    else:  # mlx-lm, its older schema, or a config beside an npz
        mlx_lm_legacy.npz_rule(files.entries, emit)
        shape = mlx_lm.weights_rules(files, emit, config.get("fine_tune_type"))
        if shape is not None:
            shape = transposed_rule(shape, emit)
            if base is not None:
                base_width_rules(mlx_widths(shape), base, emit)
        rules = mlx_lm_legacy.run_rules if fmt is AdapterFormat.MLX_LM_LEGACY else mlx_lm.run_rules
        inputs = Inputs(config, shape, total_layers, base_source, no_base_reason=no_base_reason, base_modules=base_modules)
        emit.findings += rules(inputs, path)
    return detection, emit.findings


def lint_lone_weights(files: AdapterFiles, path: str, weights_name: str) -> tuple[Detection, list[Finding]]:
    """A weights file with no adapter_config.json beside it."""
    detection = detect(None, files)
    emit = Emitter(path)
    if detection.format is AdapterFormat.MLX_NPZ:
        mlx_lm_legacy.npz_rule(files.entries, emit)
    elif detection.format is AdapterFormat.UNKNOWN:
        emit("AG008", f"cannot tell this adapter's format: {detection.evidence}; {detection.decider}")
    else:
        loader = "PeftModel.from_pretrained" if detection.format is AdapterFormat.PEFT_LORA else "mlx-lm and mlx-vlm"
        emit("AG007", f"`{weights_name}` has no adapter_config.json beside it; {loader} cannot load it without one")
    return detection, emit.findings
