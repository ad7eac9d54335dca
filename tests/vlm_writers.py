"""mlx-vlm adapters written by mlx-vlm 0.7.10's own training code, and its loader as the oracle.

The base is a tiny LLaVA (mlx-vlm ``models.llava``: a Llama language model, hidden 64,
2 layers, vocab 128, mlp 128, plus a one-layer CLIP vision tower and the projector), built in
code from a config dict with seeded random weights; nothing is downloaded.

Each sample goes through the trainer's own steps:
- ``trainer.common.model.prepare_model_for_training`` (train_type ``lora`` / ``dora`` /
  ``full``), the function the mlx-vlm training entry point calls to wrap the base;
- every trainable tensor gets seeded non-zero values ("training": the stock init leaves
  ``lora_b`` at zero);
- ``trainer.common.utils.save_trainable_weights``, the trainer's save: it writes
  ``adapters.safetensors`` (the flattened trainable parameters) and ``adapter_config.json``
  (``save_json``: indent 2, sorted keys).

``legacy_current_writer`` uses the same 0.7.10 code with ``get_peft_model(..., legacy=True)``,
which still writes the old schema (exactly ``{rank, alpha, dropout}``, ``.A``/``.B`` leaves).
The samples of mlx-vlm 0.5.0 itself come from ``legacy_writers`` (a throwaway venv).

``vlm_load`` loads a folder with ``trainer.peft.utils.apply_lora_layers`` on a fresh base
(what ``mlx_vlm.utils.load(..., adapter_path=...)`` calls after building the base) and
compares the language model's logits with the live model's.

mlx / mlx_vlm are imported inside the functions: importing this module is free.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WEIGHTS_NAME = "adapters.safetensors"
CONFIG_NAME = "adapter_config.json"
BASE_SEED = 0
TRAIN_SEED = 1
PROBE_TOKENS = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 120]
TARGETS = ["q_proj", "v_proj"]

LLAVA_CONFIG: dict[str, Any] = {
    "model_type": "llava",
    "image_token_index": 127,
    "vocab_size": 128,
    "text_config": {
        "model_type": "llama",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "vocab_size": 128,
        "max_position_embeddings": 64,
    },
    "vision_config": {
        "model_type": "clip_vision_model",
        "num_hidden_layers": 1,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 2,
        "image_size": 28,
        "patch_size": 14,
        "projection_dim": 32,
    },
}


def base_config() -> dict[str, Any]:
    """The tiny LLaVA's ``config.json`` (as mlx-vlm's ``load_config`` would read it)."""
    return copy.deepcopy(LLAVA_CONFIG)


def write_base_config(dest_dir: str | Path) -> Path:
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / "config.json"
    path.write_text(json.dumps(base_config(), indent=2), encoding="utf-8")
    return path


def make_base():
    """A fresh tiny LLaVA, built the way ``mlx_vlm.utils.load_model`` builds one, same seed every time."""
    import mlx.core as mx
    from mlx_vlm.utils import get_model_and_args, update_module_configs

    config = base_config()
    arch, _ = get_model_and_args(config)
    model_config = arch.ModelConfig.from_dict(config)
    modules = ["text", "vision", "perceiver", "projector", "audio"]  # as mlx_vlm.utils.load_model
    model_config = update_module_configs(model_config, arch, config, modules)
    mx.random.seed(BASE_SEED)
    model = arch.Model(model_config)
    mx.eval(model.parameters())
    model.eval()
    return model


def probe_output(model):
    """The language model's logits on the fixed probe tokens, as a float64 numpy array."""
    import mlx.core as mx
    import numpy as np

    out = model.language_model(mx.array([PROBE_TOKENS]))
    logits = getattr(out, "logits", out)
    return np.array(logits.astype(mx.float32)).astype(np.float64)


# -- the samples --------------------------------------------------------------------


@dataclass(frozen=True)
class VlmSample:
    name: str
    adapter_dir: Path
    live: Any = field(repr=False)  # numpy array: probe_output of the trained in-memory model


def _train(model) -> None:
    """Give every trainable tensor seeded non-zero values, as training would."""
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten

    mx.random.seed(TRAIN_SEED)
    params = sorted(tree_flatten(model.trainable_parameters()), key=lambda item: item[0])
    model.update(tree_unflatten([(k, v + 0.2 * mx.random.normal(v.shape).astype(v.dtype)) for k, v in params]))
    mx.eval(model.parameters())


def _prepare(train_type: str):
    def wrap(model):
        from mlx_vlm.trainer.common.model import prepare_model_for_training

        prepare_model_for_training(
            model, train_type=train_type, lora_rank=4, lora_alpha=8.0, target_modules=TARGETS, verbose=False
        )

    return wrap


def _legacy(model):
    from mlx_vlm.trainer.peft.utils import get_peft_model

    get_peft_model(model, TARGETS, rank=4, alpha=8.0, dropout=0.0, legacy=True, verbose=False)


CASES: dict[str, Callable[[Any], None]] = {
    "lora": _prepare("lora"),
    "dora": _prepare("dora"),
    "full": _prepare("full"),
    "legacy_current_writer": _legacy,
}


def build_sample(name: str, dest_dir: str | Path) -> VlmSample:
    """Write sample ``name`` into ``dest_dir`` with mlx-vlm's own save code."""
    from mlx_vlm.trainer.common.utils import save_trainable_weights

    model = make_base()
    CASES[name](model)
    _train(model)
    model.eval()
    live = probe_output(model)
    dest_dir = Path(dest_dir)
    save_trainable_weights(model, dest_dir / WEIGHTS_NAME)
    return VlmSample(name, dest_dir, live)


CATALOGUE: dict[str, Callable[[Path], Path]] = {
    name: (lambda dest_dir, name=name: build_sample(name, dest_dir).adapter_dir) for name in CASES
}


def build_corpus(root: str | Path) -> dict[str, VlmSample]:
    root = Path(root)
    return {name: build_sample(name, root / name) for name in CASES}


# -- the oracle: mlx-vlm's apply_lora_layers on a fresh base ---------------------------


@dataclass(frozen=True)
class Outcome:
    """What mlx-vlm's loader did with an adapter folder, as plain data.

    MLX's ``load_weights(strict=False)`` reports nothing, so ``unbound_keys`` is computed here:
    the tensors in the file whose path does not exist in the wrapped model (MLX skips them).
    """

    error_type: str | None = None
    error: str | None = None
    unbound_keys: tuple[str, ...] = ()
    max_abs_diff: float | None = None

    @property
    def loaded(self) -> bool:
        return self.error_type is None

    def reproduces_live(self, atol: float = 1e-4) -> bool:
        return self.loaded and self.max_abs_diff is not None and self.max_abs_diff < atol


def vlm_load(adapter_dir: str | Path, base_factory: Callable[[], Any] = make_base, live=None) -> Outcome:
    """Load ``adapter_dir`` with mlx-vlm's ``apply_lora_layers`` on ``base_factory()`` and report."""
    import numpy as np
    from mlx.utils import tree_flatten
    from mlx_vlm.trainer.peft.utils import apply_lora_layers
    from safetensors import safe_open

    model = base_factory()
    try:
        apply_lora_layers(model, str(adapter_dir))
    except Exception as exc:  # the outcome under test; any type is data here
        return Outcome(error_type=type(exc).__name__, error=str(exc))
    model.eval()
    paths = {k for k, _ in tree_flatten(model.parameters())}
    with safe_open(str(Path(adapter_dir) / WEIGHTS_NAME), "numpy") as f:
        unbound = tuple(sorted(k for k in f.keys() if k not in paths))
    diff = None if live is None else float(np.max(np.abs(probe_output(model) - live)))
    return Outcome(unbound_keys=unbound, max_abs_diff=diff)


def load_sample(sample: VlmSample, adapter_dir: str | Path | None = None) -> Outcome:
    return vlm_load(adapter_dir or sample.adapter_dir, make_base, live=sample.live)


# -- corruptions, as data (reference §2.3) --------------------------------------------


def read_config(adapter_dir: Path) -> dict[str, Any]:
    return json.loads((adapter_dir / CONFIG_NAME).read_text(encoding="utf-8"))


def _edit_config(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(adapter_dir: Path) -> None:
        config = read_config(adapter_dir)
        edit(config)
        (adapter_dir / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")

    return apply


def _edit_tensors(edit: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Path], None]:
    def apply(adapter_dir: Path) -> None:
        from safetensors.numpy import load_file, save_file

        path = adapter_dir / WEIGHTS_NAME
        save_file(edit(load_file(str(path))), str(path))  # mlx writes no metadata either

    return apply


def _rename(old: str, new: str):
    return lambda t: {(new if k == old else k): v for k, v in t.items()}


def _set_rank(rank: int):
    return lambda config: config["lora_parameters"].update(rank=rank)


def _relative_keys(config):
    config["lora_parameters"]["keys"] = ["self_attn.q_proj", "self_attn.v_proj"]


Q0 = "language_model.model.layers.0.self_attn.q_proj"

CORRUPTIONS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "rank_edited_4_to_8": ("lora", _edit_config(_set_rank(8))),
    "tensor_renamed": ("lora", _edit_tensors(_rename(f"{Q0}.lora_a", f"{Q0}.A"))),
    "mlx_lm_relative_keys": ("lora", _edit_config(_relative_keys)),
    "mlx_lm_prefix": ("lora", _edit_tensors(lambda t: {k.removeprefix("language_model."): v for k, v in t.items()})),
    "no_lora_parameters": ("lora", _edit_config(lambda c: c.pop("lora_parameters"))),
    "legacy_extra_key": ("legacy_current_writer", _edit_config(lambda c: c.update(scale=2.0))),
}


def corrupted_copy(sample: VlmSample, corruption: str, dest_dir: str | Path) -> Path:
    dest_dir = Path(dest_dir)
    shutil.copytree(sample.adapter_dir, dest_dir)
    CORRUPTIONS[corruption][1](dest_dir)
    return dest_dir
