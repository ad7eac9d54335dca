"""mlx-vlm's LoRA adapters, both schemas, in mlx-vlm's words. Pure.

- 0.6+: ``{fine_tune_type, num_layers: -1, lora_parameters: {rank, scale,
  dropout, keys: [full module paths]}}`` (+ ``base_quantization``), tensors
  ``language_model....lora_a`` (in, r) / ``lora_b`` (r, out) / ``m``.
- 0.5 and older: exactly ``{rank, alpha, dropout}``, tensors ``.A`` (in, r) / ``.B`` (r, out).

mlx-vlm loads with ``strict=False``: no key or shape check, so every mismatch
here is silent at load time. ``num_layers: -1`` with full-path keys is normal,
and no rule adds mlx-lm keys to either schema.
"""

from __future__ import annotations

from ..infer import AdapterShape, infer_adapter
from ..readers import MLX_WEIGHTS, AdapterFiles
from .conversions import mlx_widths, reported_contradictions, transposed_rule
from .shared import Emitter, base_width_rules, is_int, is_number, names, pickle_rules, weights_shapes

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the lint path
if TYPE_CHECKING:
    from typing import Any


def run_rules(config: dict[str, Any], files: AdapterFiles, emit: Emitter, base: dict[str, Any] | None) -> None:
    pickle_rules(files, emit)
    shapes = weights_shapes(files, MLX_WEIGHTS, emit)
    lora = config.get("lora_parameters")
    if config.get("fine_tune_type") == "full":
        return
    if lora is None:
        emit("AG806", "lora_parameters is missing: mlx-vlm refuses the adapter (\"The adapter does not have lora "
             "params in the config\"); its trainer writes rank, scale, dropout and keys there")
        return
    if not isinstance(lora, dict):
        emit("AG004", f"lora_parameters must be an object, not {type(lora).__name__}", ("lora_parameters",))
        return
    rank = lora.get("rank")
    for key, ok, want in (("rank", lambda v: is_int(v) and v > 0, "a positive integer"),
                          ("scale", is_number, "a finite number"),
                          ("dropout", lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)")):
        if key in lora and not ok(lora[key]):
            emit("AG004", f"lora_parameters.{key} must be {want}, not {lora[key]!r}", ("lora_parameters", key))
    if shapes is None:
        return
    shape = transposed_rule(infer_adapter(shapes), emit)
    _pair_rules(shape, emit)
    if is_int(rank) and rank > 0:
        _rank_rule(rank, "lora_parameters.rank", ("lora_parameters", "rank"), shape, emit)
    _keys_rules(lora.get("keys"), shape, emit)
    ftt = config.get("fine_tune_type", "lora")
    if shape.modules and ftt in ("lora", "dora") and (ftt == "dora") != shape.has_m:
        have = "has `m` magnitude tensors (DoRA)" if shape.has_m else "has no `m` magnitude tensors"
        emit("AG805", f"fine_tune_type is {ftt!r} but the adapter {have}", ("fine_tune_type",))
    if base is not None:
        base_width_rules(mlx_widths(shape), base, emit)


def run_legacy_rules(config: dict[str, Any], files: AdapterFiles, emit: Emitter, base: dict[str, Any] | None) -> None:
    pickle_rules(files, emit)
    shapes = weights_shapes(files, MLX_WEIGHTS, emit)
    rank = config.get("rank")
    if not (is_int(rank) and rank > 0):
        emit("AG004", f"rank must be a positive integer, not {rank!r}", ("rank",))
        rank = None
    for key in ("alpha", "dropout"):
        if key in config and not is_number(config[key]):
            emit("AG004", f"{key} must be a finite number, not {config[key]!r}", (key,))
    missing = [k for k in ("alpha", "dropout") if k not in config]
    if missing:
        emit("AG804", f"{' and '.join(missing)} missing: mlx-vlm then uses 0.1 for {'them' if len(missing) > 1 else 'it'}")
    if shapes is None:
        return
    # The old LoRaLayer's A (in, r) and B (r, out) are mlx-lm's lora_a / lora_b by another name.
    renamed = {}
    for name, dims in shapes.items():
        module, _, leaf = name.rpartition(".")
        renamed[f"{module}.lora_a" if leaf == "A" else f"{module}.lora_b" if leaf == "B" else name] = dims
    shape = transposed_rule(infer_adapter(renamed), emit)
    _pair_rules(shape, emit, a="A", b="B")
    if rank is not None:
        _rank_rule(rank, "rank", ("rank",), shape, emit)
    if base is not None:
        base_width_rules(mlx_widths(shape), base, emit)


def _pair_rules(shape: AdapterShape, emit: Emitter, a: str = "lora_a", b: str = "lora_b") -> None:
    for module, present in sorted(shape.unpaired.items()):
        have, lack = (a, b) if present == "lora_a" else (b, a)
        emit("AG104", f"`{module}` has `{have}` but no `{lack}`")
    for module, reason in sorted(reported_contradictions(shape).items()):
        emit("AG105", f"`{module}`: rank is contradicted: {reason}")


def _rank_rule(rank: int, where: str, json_path: tuple, shape: AdapterShape, emit: Emitter) -> None:
    wrong = {r: mods for r, mods in shape.ranks.items() if r != rank}
    if wrong:
        detail = "; ".join(f"rank {r}: {names(mods, 3)}" for r, mods in sorted(wrong.items()))
        emit("AG801", f"{where} is {rank} but the tensors say otherwise ({detail}); mlx-vlm loads the arrays "
             "anyway (strict=False), but the config describes another adapter", json_path)


def _keys_rules(keys: Any, shape: AdapterShape, emit: Emitter) -> None:
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)) or not keys:
        return
    # mlx-vlm resolves each key from the model root, then relative to language_model.
    resolved = {k: {k, f"language_model.{k}"} for k in keys}
    covered = set().union(*resolved.values())
    missing = [m for m in shape.modules if m not in covered]
    if missing:
        emit("AG802", f"lora_parameters.keys does not name {len(missing)} module(s) with tensors, which mlx-vlm "
             f"drops silently: {names(missing)}; explicit keys are never rewritten", ("lora_parameters", "keys"))
    with_tensors = set(shape.modules)
    unused = [k for k, paths in resolved.items() if not paths & with_tensors]
    if unused:
        emit("AG803", f"lora_parameters.keys entries with no tensors in the file: {names(unused)}",
             ("lora_parameters", "keys"))
