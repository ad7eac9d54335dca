"""``save_adapters``: what a trainer calls instead of hand-rolling adapter metadata.

It writes, each atomically:

- ``adapters.safetensors``: the adapter tensors only (``lora_a``, ``lora_b``, ``m``);
- ``adapter_fingerprint.json``: the behavioural fingerprint (see ``fingerprint``);
- ``adapter_config.json``: a complete config, read from the live modules.

The config is written last, so a directory with a config always has the
tensors it describes.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import fingerprint
from .live import LiveMetadata, live_metadata, not_recreated

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapters.safetensors"
MODULE_PATHS_KEY = "unsloth_mlx_lora_module_paths"
ADAPTER_LEAVES = ("lora_a", "lora_b", "m")


class SaveError(ValueError):
    """The live model and the caller's config cannot make a faithful adapter config."""


def save_adapters(model, path: str | Path, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Save ``model``'s LoRA/DoRA adapter to directory ``path``; return the config written.

    ``config`` is the caller's config (e.g. the trainer's arguments). Its
    topology, ``lora_parameters.keys``, ``num_layers`` and
    ``unsloth_mlx_lora_module_paths``, is kept as given, never overwritten;
    a non-empty module path list also selects which modules rank, scale and
    dropout are read from. Everything missing is filled from the live modules:
    ``lora_parameters {rank, scale, dropout, keys}``, the top-level ``rank``,
    ``scale`` and ``dropout`` mirrors, ``num_layers``, ``fine_tune_type`` and the
    module paths.

    Raises SaveError, before writing anything, when the config would not
    reproduce the model: a caller value contradicting the live modules, a
    value that cannot be known (mixed ranks, contradicted shapes), or caller
    keys under which stock ``load_adapters`` would not recreate every module.
    """
    from ..atomic import atomic_write

    out = build_config(model, config)
    try:
        config_bytes = dumps_config(out)
    except (TypeError, ValueError) as exc:  # e.g. a Path or NaN in the trainer's arguments
        raise SaveError(f"the config cannot be written as JSON: {exc}") from None
    tensors = adapter_tensors(model)
    _refuse_non_finite(tensors)
    weights = _safetensors_bytes(tensors)
    fingerprint_bytes = fingerprint.dumps(fingerprint.record(model, weights=weights))

    # Everything is serialised before the first write: a refusal leaves the directory as it was.
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / WEIGHTS_FILE, weights)
    atomic_write(directory / fingerprint.FINGERPRINT_FILE, fingerprint_bytes)
    atomic_write(directory / CONFIG_FILE, config_bytes)
    return out


def build_config(model, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The complete ``adapter_config.json`` dict for ``model`` (see :func:`save_adapters`)."""
    out: dict[str, Any] = copy.deepcopy(dict(config or {}))
    explicit_paths = out.get(MODULE_PATHS_KEY)
    if explicit_paths is not None and not (
        isinstance(explicit_paths, list) and all(isinstance(p, str) for p in explicit_paths)
    ):
        raise SaveError(f"{MODULE_PATHS_KEY} must be a list of module paths, not {explicit_paths!r}")
    meta = live_metadata(model, explicit_paths)
    if meta.fine_tune_type == "full":
        raise SaveError("the model has no LoRA or DoRA modules; there is no adapter to save")
    if "fine_tune_type" in meta.problems:
        raise SaveError(meta.problems["fine_tune_type"])

    given_type = out.get("fine_tune_type")
    if given_type is not None and given_type != meta.fine_tune_type:
        raise SaveError(f"config says fine_tune_type {given_type!r}, but the live modules are {meta.fine_tune_type!r}")
    out["fine_tune_type"] = meta.fine_tune_type

    params = out.get("lora_parameters")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise SaveError(f"lora_parameters must be an object, not {params!r}")
    for name in ("rank", "scale", "dropout"):
        params[name] = _settle(name, meta, [params.get(name), out.get(name)])
        out[name] = params[name]  # the top-level mirrors some consumers (mlx-vlm) read
    if "keys" not in params:
        params["keys"] = meta.keys
    out["lora_parameters"] = params
    if "num_layers" not in out:
        out["num_layers"] = meta.num_layers
    if MODULE_PATHS_KEY not in out:
        out[MODULE_PATHS_KEY] = meta.paths

    # mlx-lm builds every module with the one configured rank; any other
    # module would be refused at reload, so refuse it now.
    for module in meta.modules:
        if module.rank is None:
            raise SaveError(f"{module.path}: {module.reason}")
        if module.rank != params["rank"]:
            raise SaveError(
                f"{module.path} has rank {module.rank}, but mlx-lm rebuilds every module with rank {params['rank']}"
            )

    missed = not_recreated(meta.paths, params["keys"], out["num_layers"], meta.total_layers)
    if missed:
        raise SaveError(
            f"stock load_adapters would not recreate {len(missed)} module(s) under keys {params['keys']!r} "
            f"and num_layers {out['num_layers']}: {', '.join(missed[:5])}{' ...' if len(missed) > 5 else ''}"
        )
    return out


def _settle(name: str, meta: LiveMetadata, given: list[Any]) -> Any:
    """The live value; the caller's only where the live one cannot be known. Never two different values.

    ``given`` holds the caller's ``lora_parameters`` value and its top-level mirror.
    """
    given = [g for g in given if g is not None]
    live = getattr(meta, name)
    if live is None:
        if not given:
            raise SaveError(f"cannot tell {name}: {meta.problems.get(name, 'no inferable module')}")
        if any(not _same(g, given[0]) for g in given):
            raise SaveError(f"config gives two different {name} values: {given[0]!r} and {given[1]!r}")
        return given[0]
    for value in given:
        if not _same(value, live):
            raise SaveError(f"config says {name} {value!r}, but the live modules have {live!r}")
    return int(live) if name == "rank" else float(live)


def _same(given: Any, live: Any) -> bool:
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (given, live)):
        return False
    return math.isclose(float(given), float(live), rel_tol=1e-9, abs_tol=1e-12)


def adapter_tensors(model) -> dict[str, Any]:
    """``{name: array}`` for every adapter leaf of every LoRA/DoRA module."""
    from .live import find_lora_modules

    modules = dict(model.named_modules())
    tensors = {}
    for info in find_lora_modules(model):
        module = modules[info.path]
        for leaf in ADAPTER_LEAVES:
            if leaf in module:
                tensors[f"{info.path}.{leaf}"] = module[leaf]
    return tensors


def _refuse_non_finite(tensors: Mapping[str, Any]) -> None:
    import mlx.core as mx

    bad = [name for name, t in tensors.items() if not bool(mx.all(mx.isfinite(t)).item())]
    if bad:
        raise SaveError(f"non-finite values (NaN/Inf) in {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}")


def _safetensors_bytes(tensors: dict[str, Any]) -> bytes:
    """Serialise with mlx itself (bfloat16 has no numpy dtype), as mlx-lm's trainer does."""
    import mlx.core as mx

    mx.eval(list(tensors.values()))
    with tempfile.TemporaryDirectory(prefix="adapter-guard-") as tmp:
        target = Path(tmp) / WEIGHTS_FILE
        mx.save_safetensors(str(target), tensors, metadata={"format": "mlx"})
        return target.read_bytes()


def dumps_config(config: Mapping[str, Any]) -> bytes:
    """Sorted keys and four-space indent, as mlx-lm writes its configs."""
    return (json.dumps(config, indent=4, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
