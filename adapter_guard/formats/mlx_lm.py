"""mlx-lm's config rules: a parsed config plus what the tensors prove, in; findings with fixes, out.

Pure: the engine reads the files (``adapter_guard.readers``) and hands plain
values to ``run_rules``, so most tests need no files at all.
"""

from __future__ import annotations

import math

from ..findings import Finding, Fix
from ..infer import AdapterShape, ModuleShapes, infer_adapter, infer_num_layers, layer_path
from ..readers import MLX_WEIGHTS, AdapterFiles
from ..registry import SAFE, UNSAFE
from .conversions import reported_contradictions
from .shared import Emitter, Inputs, is_int, is_number, names, pickle_rules, weights_shapes

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the lint path
if TYPE_CHECKING:
    from typing import Any

FINE_TUNE_TYPES = ("lora", "dora", "full")
WEIGHTS_NAME = MLX_WEIGHTS


def weights_rules(files: AdapterFiles, emit: Emitter, fine_tune_type: Any) -> AdapterShape | None:
    """Findings about the files beside the config; the inferred shape when the weights are readable."""
    pickle_rules(files, emit)
    shapes = weights_shapes(files, WEIGHTS_NAME, emit)
    if shapes is None or fine_tune_type == "full":
        return None  # a full fine-tune stores model weights, not adapter factors
    return infer_adapter(shapes)


# -- the rules ----------------------------------------------------------------


def run_rules(inputs: Inputs, path: str) -> list[Finding]:
    """Every config-level rule, in a stable order. Pure."""
    emit = Emitter(path)
    config, shape = inputs.config, inputs.shape

    ftt = config.get("fine_tune_type")
    if "fine_tune_type" in config and ftt not in FINE_TUNE_TYPES:
        emit("AG004", f"fine_tune_type is {ftt!r}; mlx-lm knows {', '.join(FINE_TUNE_TYPES)}", ("fine_tune_type",))
        return emit.findings
    if ftt == "full":
        return emit.findings

    if shape is not None:
        _tensor_rules(shape, emit)
        _fine_tune_type_rules(config, shape, emit)
    _value_rules(config, emit)
    lora = config.get("lora_parameters")
    if "lora_parameters" not in config or lora is None:
        _missing_lora_parameters(config, shape, emit, inputs)
    elif isinstance(lora, dict):
        _rank_rules(config, lora, shape, emit)
        _scale_rules(config, lora, shape, emit)
        _dropout_rules(config, lora, emit)
        _mirror_rules(config, lora, shape, emit)
    _num_layers_rules(config, inputs, emit)
    _topology_rules(config, shape, emit, inputs)
    return emit.findings


def _tensor_rules(shape: AdapterShape, emit: Emitter) -> None:
    if shape.foreign:
        emit(
            "AG103",
            f"{len(shape.foreign)} tensor(s) are not lora_a/lora_b/m adapter parameters "
            f"(stock mlx-lm rejects the file): {names(shape.foreign)}",
        )
    for module, present in sorted(shape.unpaired.items()):
        missing = "lora_b" if present == "lora_a" else "lora_a"
        emit("AG104", f"`{module}` has `{present}` but no `{missing}`")
    for module, reason in sorted(reported_contradictions(shape).items()):
        emit("AG105", f"`{module}`: rank is contradicted: {reason}")
    if len(shape.ranks) > 1:
        detail = "; ".join(f"rank {r}: {names(mods, 3)}" for r, mods in sorted(shape.ranks.items()))
        emit("AG106", f"modules have different ranks, which one lora_parameters.rank cannot express ({detail})")
    if not shape.modules and not shape.foreign:
        emit("AG103", "the weights file holds no adapter tensors")


def _fine_tune_type_rules(config: dict, shape: AdapterShape, emit: Emitter) -> None:
    inferred = shape.fine_tune_type
    if inferred is None:
        return
    if "fine_tune_type" not in config:
        fix = Fix(SAFE, ((("fine_tune_type",), inferred),), f"set fine_tune_type to {inferred!r}")
        why = "`m` magnitude tensors are present" if inferred == "dora" else "no `m` magnitude tensors are present"
        emit("AG304", f"fine_tune_type is missing; the tensors say {inferred!r} ({why})", None, fix)
    elif config["fine_tune_type"] != inferred:
        have = "has `m` tensors (DoRA)" if shape.has_m else "has no `m` tensors (LoRA)"
        emit("AG305", f"fine_tune_type is {config['fine_tune_type']!r} but the adapter {have}", ("fine_tune_type",))


def _value_rules(config: dict, emit: Emitter) -> None:
    lora = config.get("lora_parameters")
    if "lora_parameters" in config and lora is not None and not isinstance(lora, dict):
        emit("AG004", f"lora_parameters must be an object, not {type(lora).__name__}", ("lora_parameters",))
    if "num_layers" in config and not is_int(config["num_layers"]):
        emit("AG004", f"num_layers must be an integer, not {config['num_layers']!r}", ("num_layers",))
    tables = [((), config)]
    if isinstance(lora, dict):
        tables.append((("lora_parameters",), lora))
    for prefix, table in tables:
        where = ".".join(prefix + ("",))
        if "rank" in table and not (is_int(table["rank"]) and table["rank"] > 0):
            emit("AG004", f"{where}rank must be a positive integer, not {table['rank']!r}", prefix + ("rank",))
        if "scale" in table and not is_number(table["scale"]):
            emit("AG004", f"{where}scale must be a finite number, not {table['scale']!r}", prefix + ("scale",))
        if "dropout" in table and not (is_number(table["dropout"]) and 0 <= table["dropout"] < 1):
            emit("AG004", f"{where}dropout must be a number in [0, 1), not {table['dropout']!r}", prefix + ("dropout",))
    if isinstance(lora, dict) and "keys" in lora:
        keys = lora["keys"]
        if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
            emit("AG004", "lora_parameters.keys must be a list of module names", ("lora_parameters", "keys"))
    paths = config.get("unsloth_mlx_lora_module_paths")
    if paths is not None and not (isinstance(paths, list) and all(isinstance(k, str) for k in paths)):
        emit("AG004", "unsloth_mlx_lora_module_paths must be a list of module paths", ("unsloth_mlx_lora_module_paths",))


def _provable_rank(shape: AdapterShape | None) -> tuple[int | None, str]:
    if shape is None:
        return None, "the weights could not be read"
    if shape.contradicted:
        return None, "some modules have a contradicted rank"
    if len(shape.ranks) > 1:
        return None, "the modules have different ranks"
    if shape.rank is None:
        return None, "no module has both lora_a and lora_b"
    return shape.rank, f"all {len(shape.ranks[shape.rank])} modules have rank {shape.rank}"


def _widths(entry: ModuleShapes) -> tuple[int, ...]:
    """A module's input and output widths, on the axes its layout puts them."""
    a, b, layout = entry.lora_a, entry.lora_b, entry.rank.layout if entry.rank else "unknown"
    if layout == "linear":
        return a[0], b[1]
    if layout == "switch":
        return a[2], b[1]
    if layout == "legacy-switch":
        return a[1], b[1]
    return ()


def _plausible_rank(shape: AdapterShape, rank: int) -> tuple[bool, str]:
    """Whether ``rank`` is below the larger width of every module.

    A rank at or above both widths of a module is more than full rank: no trainer
    needs it, and it is what a transposed layout reads as (PEFT's (r, in) taken for
    (in, r) puts the input width on the rank axis). A rank above only the smaller
    width is real: mlx-lm's default set gives gpt-oss's 4-wide router rank 8.
    """
    widths = [max(w) for entry in shape.modules.values() if (w := _widths(entry))]
    if not widths:
        return False, "no module's widths are known"
    narrowest = min(widths)
    if rank < narrowest:
        return True, f"below every module's larger width (the narrowest is {narrowest})"
    return False, f"a module is at most {narrowest} wide both ways, which a transposed layout would also show"


def _with_mirror(config: dict, key: str, value: Any, sets: tuple) -> tuple:
    """Add the top-level ``key`` mirror to a fix that writes ``lora_parameters.key``,
    so the two never disagree after it (mlx-vlm reads the mirror, mlx-lm the object)."""
    if key in config and config[key] != value:
        return sets + (((key,), value),)
    return sets


def _valid_mirror(config: dict, key: str, valid) -> Any:
    value = config.get(key)
    return value if key in config and valid(value) else None


def _scale_source(config: dict, lora: dict, rank: int | None) -> tuple[Any, str | None, str | None]:
    """(value, applicability, explanation) for a missing scale, or (None, None, how-to)."""
    mirror = _valid_mirror(config, "scale", is_number)
    if mirror is not None:
        return mirror, SAFE, f"the top-level `scale` mirror says {mirror!r}"
    alpha = next(
        (t[k] for t in (lora, config) for k in ("alpha", "lora_alpha") if k in t and is_number(t[k])),
        None,
    )
    config_rank = next((t[k] for t in (lora, config) for k in ("rank", "r") if is_int(t.get(k)) and t[k] > 0), None)
    rank = config_rank or rank
    if alpha is not None and rank:
        # rsLoRA (use_rslora, a PEFT key unsloth carries over) scales by alpha / sqrt(rank).
        if any(t.get("use_rslora") is True for t in (lora, config)):
            scale, formula = alpha / math.sqrt(rank), f"alpha / sqrt(rank) = {alpha!r} / sqrt({rank})"
        else:
            scale, formula = alpha / rank, f"alpha / rank = {alpha!r} / {rank}"
        return (
            scale,
            UNSAFE,
            f"--unsafe-fixes writes {formula} = {scale!r}, the PEFT convention, "
            "which may not be the scale the adapter was trained with (mlx-lm uses scale directly)",
        )
    return None, None, (
        "scale is not stored in the tensors and the config has no `scale` mirror or alpha; set "
        "lora_parameters.scale to the value used in training (mlx-lm's default is 20.0, unsloth's is alpha / rank)"
    )


def _missing_lora_parameters(config: dict, shape: AdapterShape | None, emit: Emitter, inputs: Inputs) -> None:
    """lora_parameters is absent or null: one fix writes every field the files prove."""
    rank, rank_why = _provable_rank(shape)
    mirror_rank = _valid_mirror(config, "rank", lambda v: is_int(v) and v > 0)
    values: dict[str, Any] = {}
    notes = []
    if rank is not None:
        values["rank"] = rank
        notes.append(f"rank {rank} from the tensors")
    elif mirror_rank is not None and shape is None:
        values["rank"] = mirror_rank
        notes.append(f"rank {mirror_rank} from the top-level mirror")
    else:
        emit("AG202", f"lora_parameters.rank is missing and cannot be inferred: {rank_why}", ("lora_parameters",))
    scale, applicability, why = _scale_source(config, {}, values.get("rank"))
    missing_scale = None
    if applicability == SAFE:
        values["scale"] = scale
        notes.append(f"scale {scale!r} from the top-level mirror")
    else:
        fix = Fix(UNSAFE, ((("lora_parameters", "scale"), scale),), f"set scale to {scale!r}") if applicability else None
        missing_scale = (f"lora_parameters.scale is missing; {why}", ("lora_parameters",), fix)
    dropout = _valid_mirror(config, "dropout", lambda v: is_number(v) and 0 <= v < 1)
    values["dropout"] = 0.0 if dropout is None else dropout
    notes.append("dropout 0.0 (no effect at inference)" if dropout is None else "dropout from the top-level mirror")
    if shape is not None and config.get("unsloth_mlx_lora_module_paths") is None:
        unwrapped = _default_wraps_without_tensors(shape, inputs)
        if shape.outer_keys:
            values["keys"] = shape.keys
            notes.append("keys from the tensors (some modules sit outside the transformer layers)")
        elif unwrapped:
            values["keys"] = shape.keys
            notes.append(f"keys from the tensors (mlx-lm's default set would also wrap {names(unwrapped, 3)}, "
                         f"which have none; base: {inputs.base_source})")
    existing = config.get("lora_parameters", "absent")
    sets = ((("lora_parameters",), values),)
    if "rank" in values and rank is not None:
        sets = _with_mirror(config, "rank", rank, sets)
    fix = Fix(SAFE, sets, "write lora_parameters: " + ", ".join(notes))
    state = "is null" if existing is None else "is missing"
    emit("AG201", f"lora_parameters {state}; mlx-lm needs it for {config.get('fine_tune_type', 'lora')} adapters", ("lora_parameters",) if existing is None else None, fix)
    if missing_scale is not None:  # after AG201, whose fix creates the object this one writes into
        emit("AG204", *missing_scale)


def _rank_rules(config: dict, lora: dict, shape: AdapterShape | None, emit: Emitter) -> None:
    rank, why = _provable_rank(shape)
    if "rank" not in lora:
        if rank is not None:
            sets = _with_mirror(config, "rank", rank, ((("lora_parameters", "rank"), rank),))
            fix = Fix(SAFE, sets, f"set rank to {rank}")
            emit("AG202", f"lora_parameters.rank is missing; the tensors prove rank {rank} ({why})", ("lora_parameters",), fix)
        else:
            emit("AG202", f"lora_parameters.rank is missing and cannot be inferred: {why}", ("lora_parameters",))
    elif rank is not None and is_int(lora["rank"]) and lora["rank"] > 0 and lora["rank"] != rank:
        # Since mlx-lm's strict load (#1727) a rank that disagrees with the tensors never
        # loads, so when every module agrees on a plausible rank, it is the only loadable value.
        plausible, how = _plausible_rank(shape, rank)
        sets = _with_mirror(config, "rank", rank, ((("lora_parameters", "rank"), rank),))
        fix = Fix(SAFE if plausible else UNSAFE, sets, f"replace rank {lora['rank']} with {rank}")
        emit(
            "AG203",
            f"lora_parameters.rank is {lora['rank']} but the tensors have rank {rank} ({why}; {how}); "
            "stock mlx-lm refuses the tensors",
            ("lora_parameters", "rank"),
            fix,
        )


def _scale_rules(config: dict, lora: dict, shape: AdapterShape | None, emit: Emitter) -> None:
    if "scale" in lora:
        return
    scale, applicability, why = _scale_source(config, lora, _provable_rank(shape)[0])
    fix = Fix(applicability, ((("lora_parameters", "scale"), scale),), f"set scale to {scale!r}") if applicability else None
    emit("AG204", f"lora_parameters.scale is missing; {why}", ("lora_parameters",), fix)


def _dropout_rules(config: dict, lora: dict, emit: Emitter) -> None:
    if "dropout" in lora:
        return
    mirror = _valid_mirror(config, "dropout", lambda v: is_number(v) and 0 <= v < 1)
    if mirror is not None:
        value, why = mirror, f"the top-level `dropout` mirror says {mirror!r}"
    else:
        value, why = 0.0, "the fix writes 0.0: mlx-lm requires the key, and dropout has no effect at inference"
    fix = Fix(SAFE, ((("lora_parameters", "dropout"), value),), f"set dropout to {value!r}")
    emit("AG205", f"lora_parameters.dropout is missing; {why}", ("lora_parameters",), fix)


def _mirror_rules(config: dict, lora: dict, shape: AdapterShape | None, emit: Emitter) -> None:
    rank = _provable_rank(shape)[0]
    for key in ("rank", "scale", "dropout"):
        if key in config and key in lora:
            top, inner = config[key], lora[key]
            same = top == inner and type(top) is not bool and type(inner) is not bool
            if same:
                continue
            if key == "rank" and rank is not None and inner == rank and is_int(inner):
                # The tensors prove lora_parameters.rank right: the mirror follows it.
                fix = Fix(SAFE, (((key,), rank),), f"set the top-level rank mirror to {rank}")
                emit("AG403", f"top-level rank is {top!r} but lora_parameters.rank and the tensors say {rank}", (key,), fix)
            elif key == "rank" and rank is not None and top == rank:
                continue  # AG203 replaces lora_parameters.rank, which settles this too
            else:
                emit("AG403", f"top-level {key} is {top!r} but lora_parameters.{key} is {inner!r}", (key,))


def _num_layers_rules(config: dict, inputs: Inputs, emit: Emitter) -> None:
    shape, total = inputs.shape, inputs.total_layers
    full_paths = _explicit_full_paths(config)
    if "num_layers" not in config:
        if shape is None:
            emit("AG301", "num_layers is missing (mlx-lm raises AttributeError) and the weights cannot be read")
            return
        if full_paths:
            value, why = -1, "the keys are full module paths, so num_layers does not limit them"
        else:
            value, why = infer_num_layers(shape, total)
        if value is None:
            code = "AG303" if total is not None else "AG301"
            emit(code, f"num_layers is missing and cannot be proven: {why}{_base_note(inputs)}")
            return
        source = _base_note(inputs) if total is not None else ""
        fix = Fix(SAFE, ((("num_layers",), value),), f"set num_layers to {value}")
        emit("AG301", f"num_layers is missing (mlx-lm raises AttributeError); {why}{source}: num_layers = {value}", None, fix)
        return
    value = config["num_layers"]
    if not is_int(value) or shape is None or value <= 0 or full_paths:
        return  # <= 0 means every layer in mlx-lm; full-path keys are not limited by it
    indices = shape.all_layer_indices
    if not indices:
        return
    lo, hi = min(indices), max(indices)
    if total is not None:
        first_covered = max(total - value, 0)
        if lo < first_covered:
            emit(
                "AG302",
                f"num_layers = {value} covers layers {first_covered}..{total - 1} of {total}, "
                f"but layer {lo} has adapter tensors{_base_note(inputs)}",
                ("num_layers",),
            )
    elif hi - lo + 1 > value:
        emit(
            "AG302",
            f"num_layers = {value} covers at most {value} consecutive layers, but layers {lo}..{hi} have adapter tensors",
            ("num_layers",),
        )


def _base_note(inputs: Inputs) -> str:
    """Where the base config came from, or why there is none."""
    if inputs.base_source:
        return f" (base config: {inputs.base_source})"
    return f" (no base config: {inputs.no_base_reason})" if inputs.no_base_reason else ""


def _explicit_full_paths(config: dict) -> bool:
    """Whether lora_parameters.keys names every module by its full path (unsloth style)."""
    lora = config.get("lora_parameters")
    keys = lora.get("keys") if isinstance(lora, dict) else None
    return bool(keys) and isinstance(keys, list) and all(isinstance(k, str) and layer_path(k) is not None for k in keys)


def _default_wraps_without_tensors(shape: AdapterShape, inputs: Inputs) -> set[str]:
    """Layer-relative modules that mlx-lm's default key set (every Linear, SwitchLinear
    and Embedding in the layers) would wrap although the tensors have none for them.

    Known only from the base weights' headers, and trusted only when they name every
    module the tensors do (else the naming differs, e.g. a Hugging Face checkpoint that
    mlx-lm renames on load, and nothing is claimed)."""
    if not inputs.base_modules or not shape.layer_indices:
        return set()
    unwrapped: set[str] = set()
    for prefix in shape.layer_indices:
        available = inputs.base_modules.get(prefix)
        if available is None or not shape.relative_keys <= available:
            return set()
        unwrapped |= available - shape.relative_keys
    return unwrapped


def modules_outside_keys(shape: AdapterShape, keys: list[str]) -> list[str]:
    """The adapter's modules that ``keys`` names neither by full path nor by layer-relative path."""
    wanted = set(keys)
    return [
        m for m in shape.modules
        if m not in wanted and (layer_path(m) is None or layer_path(m).relative not in wanted)
    ]


def _topology_rules(config: dict, shape: AdapterShape | None, emit: Emitter, inputs: Inputs) -> None:
    lora = config.get("lora_parameters")
    keys = lora.get("keys") if isinstance(lora, dict) else None
    paths = config.get("unsloth_mlx_lora_module_paths")
    if shape is None or not shape.modules:
        return
    if isinstance(keys, list) and all(isinstance(k, str) for k in keys):
        missing = modules_outside_keys(shape, keys)
        if missing:
            emit(
                "AG402",
                f"lora_parameters.keys does not cover {len(missing)} module(s) with tensors: {names(missing)}; "
                "explicit keys are never rewritten",
                ("lora_parameters", "keys"),
            )
    if isinstance(paths, list) and all(isinstance(k, str) for k in paths):
        missing = sorted(set(shape.modules) - set(paths))
        if missing:
            emit(
                "AG402",
                f"unsloth_mlx_lora_module_paths does not cover {len(missing)} module(s) with tensors: "
                f"{names(missing)}; explicit module paths are never rewritten",
                ("unsloth_mlx_lora_module_paths",),
            )
    if keys is None and shape.outer_keys and isinstance(lora, dict):
        fix = None
        if paths is None:
            fix = Fix(SAFE, ((("lora_parameters", "keys"), shape.keys),), "write lora_parameters.keys from the tensors")
        emit(
            "AG401",
            f"without lora_parameters.keys mlx-lm only wraps modules inside the transformer layers, "
            f"but {names(shape.outer_keys)} sit outside them"
            + ("" if fix else "; add keys by hand (unsloth_mlx_lora_module_paths is explicit topology and is not copied)"),
            ("lora_parameters",),
            fix,
        )
    elif keys is None and paths is None and isinstance(lora, dict):
        unwrapped = _default_wraps_without_tensors(shape, inputs)
        if unwrapped:
            fix = Fix(SAFE, ((("lora_parameters", "keys"), shape.keys),), "write lora_parameters.keys from the tensors")
            emit(
                "AG401",
                f"without lora_parameters.keys mlx-lm wraps every Linear of the layers, and {names(unwrapped)} "
                f"have no tensors (read from the base weights; base: {inputs.base_source}); the fix writes keys from the tensors",
                ("lora_parameters",),
                fix,
            )
