"""What a live MLX model proves about its adapter: the metadata a complete config needs.

A trainer holds the truth at save time: every LoRA module carries its factors,
its ``scale`` (a plain attribute, so not in the weights file) and its dropout.
This reads them. Rank goes through :func:`adapter_guard.infer.infer_rank`, the
same helper the file lint uses on safetensors headers.

mlx is only touched through the model object passed in; nothing here imports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..infer import infer_rank, layer_path

#: Digits kept when reading dropout back from MLX's keep probability, so that
#: ``1 - (1 - 0.1)`` reads as 0.1 and not 0.09999999999999998.
_DROPOUT_DIGITS = 12


@dataclass(frozen=True)
class LoRAModule:
    """One live LoRA/DoRA module."""

    path: str
    kind: str  # the class name: LoRALinear, LoRASwitchLinear, LoRAEmbedding, DoRALinear, ...
    lora_a: tuple[int, ...]
    lora_b: tuple[int, ...]
    rank: int | None
    layout: str  # from infer_rank: linear, switch, legacy-switch, unknown
    scale: float | None
    dropout: float
    dora: bool
    #: Why rank or scale could not be read; the module is then not used for inference.
    reason: str | None = None


@dataclass
class LiveMetadata:
    """Everything ``adapter_config.json`` needs, read from a live model."""

    fine_tune_type: str  # lora, dora, or full (no LoRA modules)
    num_layers: int
    rank: int | None
    scale: float | None
    dropout: float | None
    #: ``lora_parameters.keys`` that make stock ``load_adapters`` recreate exactly these modules.
    keys: list[str]
    #: The caller's explicit module paths, kept as given (even ``[]``); else every LoRA module's path.
    module_paths: list[str] | None
    #: Every LoRA module in the model, in ``named_modules`` order.
    modules: list[LoRAModule] = field(default_factory=list)
    #: Paths rank/scale/dropout were read from.
    used: list[str] = field(default_factory=list)
    #: Paths not used, with the reason (contradicted rank, not a LoRA module, ...).
    skipped: dict[str, str] = field(default_factory=dict)
    #: Why rank, scale or dropout is None although modules were used (e.g. mixed ranks).
    problems: dict[str, str] = field(default_factory=dict)
    #: Number of transformer layers in the model, when they could be found.
    total_layers: int | None = None

    @property
    def paths(self) -> list[str]:
        return [m.path for m in self.modules]

    def lora_parameters(self) -> dict[str, Any]:
        return {"rank": self.rank, "scale": self.scale, "dropout": self.dropout, "keys": list(self.keys)}


def live_metadata(model, module_paths: Sequence[str] | None = None) -> LiveMetadata:
    """Read rank, scale, dropout, keys, ``num_layers`` and ``fine_tune_type`` from ``model``.

    ``module_paths`` is the caller's explicit topology:

    - non-empty: only those modules are used to infer rank, scale and dropout;
      a selected module that is not inferable leaves the value unknown, it
      never borrows one from an unselected module;
    - empty (``[]``): kept as ``[]`` in the result, but does not filter;
    - ``None``: no filter, and the result lists every LoRA module.
    """
    modules = find_lora_modules(model)
    layers = transformer_layers(model)
    total = len(layers) if layers is not None else None

    by_path = {m.path: m for m in modules}
    skipped: dict[str, str] = {}
    if module_paths:
        selected = []
        for path in dict.fromkeys(module_paths):
            if path in by_path:
                selected.append(by_path[path])
            else:
                skipped[path] = "not a LoRA module of this model"
    else:
        selected = list(modules)
    used = []
    for module in selected:
        if module.reason is not None:
            skipped[module.path] = module.reason
        else:
            used.append(module)

    problems: dict[str, str] = {}
    rank = _agree("rank", [(m.path, m.rank) for m in used], problems)
    scale = _agree("scale", [(m.path, m.scale) for m in used], problems)
    dropout = _agree("dropout", [(m.path, m.dropout) for m in used], problems)
    if selected and not used:
        for name in ("rank", "scale", "dropout"):
            problems[name] = "none of the selected modules is inferable: " + "; ".join(
                f"{p}: {r}" for p, r in skipped.items()
            )

    kinds = {m.dora for m in modules}
    if not modules:
        fine_tune_type = "full"
    elif kinds == {True, False}:
        fine_tune_type = "dora"
        problems["fine_tune_type"] = "the model mixes LoRA and DoRA modules; mlx-lm reloads only one kind"
    else:
        fine_tune_type = "dora" if True in kinds else "lora"

    num_layers, keys = topology([m.path for m in modules], total)
    return LiveMetadata(
        fine_tune_type=fine_tune_type,
        num_layers=num_layers,
        rank=rank,
        scale=scale,
        dropout=dropout,
        keys=keys,
        module_paths=list(module_paths) if module_paths is not None else [m.path for m in modules],
        modules=modules,
        used=[m.path for m in used],
        skipped=skipped,
        problems=problems,
        total_layers=total,
    )


def find_lora_modules(model) -> list[LoRAModule]:
    """Every module carrying ``lora_a`` and ``lora_b``, read through the shared helpers."""
    found = []
    for path, module in model.named_modules():
        if not path or not _is_lora(module):
            continue
        a, b = tuple(module.lora_a.shape), tuple(module.lora_b.shape)
        result = infer_rank(a, b)
        scale, scale_reason = read_scale(module)
        found.append(
            LoRAModule(
                path=path,
                kind=type(module).__name__,
                lora_a=a,
                lora_b=b,
                rank=result.rank,
                layout=result.layout,
                scale=scale,
                dropout=read_dropout(module),
                dora="m" in module,
                reason=result.reason if result.rank is None else scale_reason,
            )
        )
    # named_modules walks children last-first; report in path order.
    return sorted(found, key=lambda m: path_key(m.path))


def _is_lora(module) -> bool:
    try:
        return "lora_a" in module and "lora_b" in module
    except TypeError:
        return False


def read_scale(module) -> tuple[float | None, str | None]:
    """The module's ``scale``: a Python number or a one-element ``mx.array``."""
    value = getattr(module, "scale", None)
    if value is None:
        return None, "the module has no scale attribute"
    if isinstance(value, bool):
        return None, f"scale is {value!r}, not a number"
    if isinstance(value, (int, float)):
        return float(value), None
    size = getattr(value, "size", None)
    if size == 1:
        return float(value.item()), None
    shape = getattr(value, "shape", None)
    return None, f"scale is {type(value).__name__}{f' of shape {tuple(shape)}' if shape is not None else ''}, not a number"


def read_dropout(module) -> float:
    """The dropout probability of ``module.dropout``.

    MLX's ``nn.Dropout`` keeps the *keep* probability in ``_p_1``; compatibility
    shims may also carry a stale ``.p``, so ``_p_1`` wins. No dropout module: 0.0.
    """
    drop = getattr(module, "dropout", None)
    if drop is None:
        return 0.0
    keep = getattr(drop, "_p_1", None)
    if keep is not None:
        return round(1.0 - float(keep), _DROPOUT_DIGITS)
    p = getattr(drop, "p", None)
    return float(p) if p is not None else 0.0


def transformer_layers(model) -> list | None:
    """The model's transformer layers: ``model.layers`` or ``language_model.model.layers``."""
    for chain in (("layers",), ("language_model", "model", "layers"), ("model", "layers"), ("language_model", "layers")):
        obj = model
        try:
            for name in chain:
                obj = getattr(obj, name)
        except AttributeError:
            continue
        if isinstance(obj, (list, tuple)):
            return list(obj)
    return None


def topology(paths: Iterable[str], total_layers: int | None) -> tuple[int, list[str]]:
    """``num_layers`` and ``keys`` under which stock mlx-lm recreates exactly ``paths``.

    Layer-relative keys (mlx-lm style) when the modules form a full grid: the
    same relative names in every layer of a suffix of the model. Otherwise
    full module paths with ``num_layers = -1``, which mlx-lm also honours and
    which cannot wrap a module the adapter does not have.
    """
    paths = list(paths)
    inner: dict[int, set[str]] = {}
    prefixes, outer = set(), []
    for path in paths:
        located = layer_path(path)
        if located is None:
            outer.append(path)
        else:
            prefixes.add(located.prefix)
            inner.setdefault(located.index, set()).add(located.relative)
    if not inner:
        return -1, sorted(outer)
    indices = sorted(inner)
    lo, hi = indices[0], indices[-1]
    names = set().union(*inner.values())
    is_grid = len(prefixes) == 1 and all(inner.get(i) == names for i in range(lo, hi + 1))
    # Relative keys wrap every layer from ``lo`` to the end; anything short of
    # the last layer would recreate modules that have no tensors.
    is_suffix = total_layers is not None and hi == total_layers - 1
    # mlx-lm's first pass walks ``model.layers``; a VLM's language tower is not that.
    if is_grid and is_suffix and prefixes == {"model.layers"}:
        count = -1 if lo == 0 else total_layers - lo
        return count, sorted(names) + sorted(outer)
    return -1, sorted(paths, key=path_key)


def not_recreated(paths: Iterable[str], keys: Sequence[str] | None, num_layers: int, total_layers: int | None) -> list[str]:
    """The paths stock ``load_adapters`` would *not* recreate under ``keys`` / ``num_layers``."""
    start = 0
    if total_layers is not None and num_layers > 0:
        start = max(total_layers - num_layers, 0)
    keyset = set(keys) if keys is not None else None
    missed = []
    for path in paths:
        located = layer_path(path)
        in_window = located is not None and located.prefix == "model.layers" and located.index >= start
        if keyset is None:
            # No keys: every linear/switch/embedding inside the layer window.
            ok = in_window
        else:
            ok = path in keyset or (in_window and located.relative in keyset)
        if not ok:
            missed.append(path)
    return missed


def _agree(name: str, values: list[tuple[str, Any]], problems: dict[str, str]):
    """The one value all modules share; None (and a problem) when they differ."""
    groups: dict[Any, list[str]] = {}
    for path, value in values:
        groups.setdefault(value, []).append(path)
    if len(groups) == 1:
        return next(iter(groups))
    if len(groups) > 1:
        problems[name] = f"modules differ in {name}: " + "; ".join(
            f"{value} ({_first(paths)})" for value, paths in groups.items()
        )
    return None


def _first(paths: list[str]) -> str:
    return paths[0] if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more"


def path_key(path: str) -> tuple:
    """Sort ``layers.10`` after ``layers.2``."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.split("."))
