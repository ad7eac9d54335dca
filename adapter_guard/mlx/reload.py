"""Build a base model from a local config and reload an adapter with stock mlx-lm.

Shared by the ``--smoke`` reload test and the ``--gpt-oss`` regression.
Imports mlx and mlx_lm inside the functions, never at module import time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..readers import read_config_bytes


def build_model(config: Mapping[str, Any], seed: int = 0):
    """An mlx-lm model for ``config`` (a ``config.json`` dict) with seeded random weights.

    Built by stock ``mlx_lm.utils.load_model`` from a scratch directory holding
    only the config: mlx-lm's public loader picks the architecture (with its
    remappings) and, given no weights and ``strict=False``, keeps the seeded
    initial values.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="adapter-guard-base-") as scratch:
        (Path(scratch) / "config.json").write_text(json.dumps(dict(config)), encoding="utf-8")
        return _load_model(Path(scratch), seed)[0]


def _load_model(base_dir: Path, seed: int):
    """Stock ``load_model``: the weights in ``base_dir`` if any, else seeded initial values; eval mode.

    ``trust_remote_code=False`` is spelt out: whatever the base's config asks
    for, mlx-lm must not import code from the directory.
    """
    import mlx.core as mx
    from mlx_lm.utils import load_model

    mx.random.seed(seed)
    model, config = load_model(base_dir, strict=False, trust_remote_code=False)
    mx.eval(model.parameters())
    model.eval()
    return model, config


def has_weights(base_dir: str | Path) -> bool:
    """Whether ``base_dir`` holds weights mlx-lm would load (``model*.safetensors``).

    Not any ``*.safetensors``: an adapter directory with a copied ``config.json``
    holds ``adapters.safetensors``, which is no base model.
    """
    return any(Path(base_dir).glob("model*.safetensors"))


#: ``config.json`` keys that ask a loader to import Python shipped with the model.
#: mlx-lm's ``load_model`` honours ``model_file`` (since 0.30.6; behind
#: ``trust_remote_code`` since 0.32.0, ml-explore/mlx-lm#1385). ``auto_map`` is
#: transformers' hook; mlx-lm 0.32 ignores it and adapter-guard never hands a
#: base to transformers, but a base that carries one is refused all the same:
#: it was written to run its own code.
CODE_HOOKS = ("model_file", "auto_map")


class BaseRefused(Exception):
    """The base asks to run code that came with it; adapter-guard never does."""


def code_hooks(base_config: Any) -> list[str]:
    """The code-hook keys in a base ``config.json`` (top level or a nested ``*_config``), as JSON paths."""
    if not isinstance(base_config, Mapping):
        return []
    found = [key for key in CODE_HOOKS if key in base_config]
    for name, table in base_config.items():
        if isinstance(table, Mapping):
            found += [f"{name}.{key}" for key in CODE_HOOKS if key in table]
    return found


def refusal(source: BaseModelSource, hooks: list[str]) -> str:
    """The one-line reason a base is refused."""
    return (
        f"base {source.path} ({source.origin}) asks to run code it ships ({', '.join(hooks)} in config.json); "
        "adapter-guard never runs code from the checked repository, so it was not loaded"
    )


def load_base(source: BaseModelSource, seed: int = 0):
    """Load a base model from its resolved local directory.

    Returns ``(model, config, random_weights)``. Weights are loaded when the
    directory has ``model*.safetensors``; otherwise the architecture is built
    from ``config.json`` with seeded random weights, which is enough for
    shape-level and delta-level checks. Raises :class:`BaseRefused`, before
    mlx-lm sees the directory, when the config carries a code hook. The
    config is read as the lint reads one: a regular file of bounded size, so a
    planted FIFO or a link to /dev/zero is an error, not a hang.
    """
    config = json.loads(read_config_bytes(source.path / "config.json"))
    hooks = code_hooks(config)
    if hooks:
        raise BaseRefused(refusal(source, hooks))
    model, config = _load_model(source.path, seed)
    return model, config, not source.has_weights


def reload_adapter(model, adapter_dir: str | Path):
    """Apply an adapter with stock ``mlx_lm.tuner.utils.load_adapters``, then ``eval()``.

    Upstream leaves the model in training mode after the load, so dropout
    would run at inference; adapter-guard always switches to eval mode.
    """
    from mlx_lm.tuner.utils import load_adapters

    model = load_adapters(model, str(adapter_dir))
    model.eval()
    return model


# -- the base model the checks run on --------------------------------------------------------


@dataclass(frozen=True)
class BaseModelSource:
    """A resolved local directory holding a base model's ``config.json``, and where it came from."""

    path: Path
    #: Where the base came from, as the resolver words it: "--base-model", "beside the adapter", ...
    origin: str

    @property
    def has_weights(self) -> bool:
        """Whether ``model*.safetensors`` sit beside the config."""
        return has_weights(self.path)

    def describe(self) -> str:
        weights = "its weights" if self.has_weights else "seeded random weights (config.json only)"
        return f"base {self.path} ({self.origin}), {weights}"


@dataclass(frozen=True)
class NoBase:
    """No base model could be found; ``reason`` says why, in one line."""

    reason: str


Base = BaseModelSource | NoBase


def find_base(config: Mapping[str, Any] | None, adapter_dir: str | Path | None, base_model: str | Path | None) -> Base:
    """The base for a caller that hands ``--smoke`` or ``--gpt-oss`` no resolved ``base=``.

    The CLI's engine always resolves it; this fallback asks the same lookup
    (:func:`adapter_guard.base.find_base`), with the working directory as the
    repository root, so one set of rules says where a base may come from.
    """
    from ..base import find_base as lookup_base

    if adapter_dir is None and base_model is None:
        return NoBase("no --base-model")
    lookup = lookup_base(
        config if isinstance(config, Mapping) else {},
        Path(adapter_dir) if adapter_dir is not None else Path.cwd(),
        root=Path.cwd(),
        base_model=Path(base_model) if base_model is not None else None,
    )
    return from_lookup(lookup)


def from_lookup(lookup) -> Base:
    """An :class:`adapter_guard.base.BaseLookup` as the MLX checks take it."""
    if lookup is not None and lookup.base is not None:
        return BaseModelSource(lookup.base.directory, lookup.base.origin)
    return NoBase(lookup.reason if lookup is not None and lookup.reason else "no base model was found")
