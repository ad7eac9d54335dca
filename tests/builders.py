"""Build real adapters with stock mlx-lm, for tests.

Everything here is tiny (a few thousand parameters) and seeded, so a test can
train-free "fine-tune" a model, save it the way ``mlx_lm.lora`` does, and use
stock ``mlx_lm.tuner.utils.load_adapters`` as the oracle.

mlx / mlx_lm / numpy are imported inside the functions: importing this module
costs nothing, and the lint-path tests can share it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ATTENTION_KEYS = ["self_attn.q_proj", "self_attn.v_proj"]
GPT_OSS_EXPERT_KEYS = ["mlp.experts.gate_proj", "mlp.experts.up_proj", "mlp.experts.down_proj"]
EMBEDDING_KEYS = ["self_attn.q_proj", "model.embed_tokens"]


# -- base configs ---------------------------------------------------------------


def tiny_llama_config(
    num_layers: int = 4,
    *,
    hidden_size: int = 32,
    intermediate_size: int = 64,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    vocab_size: int = 64,
    tie_word_embeddings: bool = True,
) -> dict[str, Any]:
    """A ``config.json`` for a llama small enough to build in milliseconds."""
    return {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_attention_heads,
        "num_key_value_heads": num_key_value_heads,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "vocab_size": vocab_size,
        "tie_word_embeddings": tie_word_embeddings,
    }


def tiny_gpt_oss_config(
    num_layers: int = 4,
    sliding_window: int = 16,
    *,
    hidden_size: int = 32,
    intermediate_size: int = 32,
    head_dim: int = 8,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    num_local_experts: int = 4,
    num_experts_per_tok: int = 2,
    vocab_size: int = 64,
) -> dict[str, Any]:
    """A ``config.json`` for a gpt-oss with alternating sliding/full attention."""
    return {
        "model_type": "gpt_oss",
        "architectures": ["GptOssForCausalLM"],
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "head_dim": head_dim,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_attention_heads,
        "num_key_value_heads": num_key_value_heads,
        "num_local_experts": num_local_experts,
        "num_experts_per_tok": num_experts_per_tok,
        "rms_norm_eps": 1e-5,
        "rope_theta": 150000,
        "sliding_window": sliding_window,
        "layer_types": [("sliding_attention", "full_attention")[i % 2] for i in range(num_layers)],
        "vocab_size": vocab_size,
    }


def write_base_dir(config: dict[str, Any], base_dir: str | Path) -> Path:
    """A base-model directory holding only ``config.json`` (no weights)."""
    base_dir = Path(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    (base_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return base_dir


# -- live models ------------------------------------------------------------------


def make_base(config: dict[str, Any], seed: int = 0):
    """The base model, with the same seeded weights every time."""
    from adapter_guard.mlx.reload import build_model

    return build_model(config, seed)


def make_live_adapter(
    config: dict[str, Any],
    *,
    num_layers: int,
    keys: list[str] | None = None,
    rank: int = 4,
    scale: float = 2.0,
    dropout: float = 0.0,
    dora: bool = False,
    seed: int = 1,
):
    """A base model wrapped with stock mlx-lm LoRA/DoRA layers, "trained".

    Freezes the base first, as ``mlx_lm.lora`` does, so the trainable
    parameters are exactly the adapter tensors. Every factor then gets seeded
    non-zero values (stock init leaves ``lora_b`` at zero, which changes
    nothing), and DoRA magnitudes are perturbed so ``m`` matters too.
    """
    import mlx.core as mx
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model = make_base(config)
    model.freeze()
    params: dict[str, Any] = {"rank": rank, "scale": scale, "dropout": dropout}
    if keys is not None:
        params["keys"] = list(keys)
    linear_to_lora_layers(model, num_layers, params, use_dora=dora)

    mx.random.seed(seed)
    for _, module in sorted(model.named_modules(), key=lambda item: item[0]):
        if not ("lora_a" in module and "lora_b" in module):
            continue
        a, b = module.lora_a, module.lora_b
        module.lora_a = mx.random.normal(a.shape) * (a.shape[-2] if a.ndim == 3 else a.shape[0]) ** -0.5
        module.lora_b = mx.random.normal(b.shape) * 0.5
        if "m" in module:
            module.m = module.m * (1.0 + 0.1 * mx.random.normal(module.m.shape))
    mx.eval(model.parameters())
    model.eval()
    return model


def adapter_tensors(model) -> dict[str, Any]:
    """What ``mlx_lm.tuner.trainer`` saves: the flattened trainable parameters."""
    from mlx.utils import tree_flatten

    return dict(tree_flatten(model.trainable_parameters()))


# -- saving like mlx_lm.lora ---------------------------------------------------------


def mlx_lm_adapter_config(
    *,
    num_layers: int,
    lora_parameters: dict[str, Any] | None,
    fine_tune_type: str = "lora",
    model: str = "tiny-base",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The dict ``mlx_lm.lora`` writes: every CLI argument after defaults are applied.

    Mirrors ``mlx_lm.lora.main``: parse an empty command line, then fill each
    ``None`` from ``CONFIG_DEFAULTS``; ``train_model`` sets ``lora_parameters``
    to ``None`` for full fine-tuning before saving.
    """
    from mlx_lm.lora import CONFIG_DEFAULTS, build_parser

    args = vars(build_parser().parse_args([]))
    for key, value in CONFIG_DEFAULTS.items():
        if args.get(key) is None:
            args[key] = copy.deepcopy(value)
    args.update(
        train=True,
        model=model,
        num_layers=num_layers,
        fine_tune_type=fine_tune_type,
        lora_parameters=None if fine_tune_type == "full" else copy.deepcopy(lora_parameters),
    )
    args.update(extra or {})
    return args


def save_mlx_lm_style(
    model,
    adapter_dir: str | Path,
    *,
    num_layers: int,
    lora_parameters: dict[str, Any] | None,
    fine_tune_type: str = "lora",
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``adapters.safetensors`` and ``adapter_config.json`` as ``mlx_lm.lora`` does."""
    import mlx.core as mx
    from mlx_lm.utils import save_config

    adapter_dir = Path(adapter_dir)
    adapter_dir.mkdir(parents=True, exist_ok=True)
    tensors = adapter_tensors(model)
    foreign = [name for name in tensors if name.rsplit(".", 1)[-1] not in {"lora_a", "lora_b", "m"}]
    if foreign:
        raise ValueError(f"trainable parameters that are not adapter tensors: {foreign}")
    config = mlx_lm_adapter_config(
        num_layers=num_layers, lora_parameters=lora_parameters, fine_tune_type=fine_tune_type, extra=extra
    )
    args = copy.deepcopy(config)
    save_config(args, adapter_dir / "adapter_config.json")
    mx.save_safetensors(str(adapter_dir / "adapters.safetensors"), tensors)
    return adapter_dir


# -- outputs ------------------------------------------------------------------------


def probe_tokens(config: dict[str, Any], *, seed: int = 0, batch: int = 2, length: int = 8):
    """A seeded batch of token ids for ``config``'s vocabulary."""
    import mlx.core as mx
    import numpy as np

    ids = np.random.default_rng(seed).integers(0, config["vocab_size"], size=(batch, length))
    return mx.array(ids.astype(np.int32))


def reference_logits(model, tokens):
    """Eval-mode logits of a live model."""
    import mlx.core as mx

    model.eval()
    logits = model(tokens)
    mx.eval(logits)
    return logits


def fresh_reload_logits(config: dict[str, Any], adapter_dir: str | Path, tokens, seed: int = 0):
    """Logits of a fresh seeded base with the adapter reloaded by stock mlx-lm."""
    from adapter_guard.mlx.reload import reload_adapter

    model = reload_adapter(make_base(config, seed), adapter_dir)
    return reference_logits(model, tokens)


def max_abs_diff(a, b) -> float:
    import mlx.core as mx

    return float(mx.max(mx.abs(a - b)).item())


# -- layouts the tests need -------------------------------------------------------------


@dataclass
class BuiltAdapter:
    """A live model and the adapter directory saved from it."""

    model: Any
    base_config: dict[str, Any]
    adapter_dir: Path
    num_layers: int
    lora_parameters: dict[str, Any] | None
    fine_tune_type: str = "lora"
    tensor_names: list[str] = field(default_factory=list)


def _build(
    adapter_dir: str | Path,
    base_config: dict[str, Any],
    *,
    num_layers: int,
    keys: list[str] | None,
    rank: int = 4,
    scale: float = 2.0,
    dropout: float = 0.0,
    dora: bool = False,
) -> BuiltAdapter:
    model = make_live_adapter(
        base_config, num_layers=num_layers, keys=keys, rank=rank, scale=scale, dropout=dropout, dora=dora
    )
    lora_parameters: dict[str, Any] = {"rank": rank, "scale": scale, "dropout": dropout}
    if keys is not None:
        lora_parameters["keys"] = list(keys)
    fine_tune_type = "dora" if dora else "lora"
    adapter_dir = save_mlx_lm_style(
        model, adapter_dir, num_layers=num_layers, lora_parameters=lora_parameters, fine_tune_type=fine_tune_type
    )
    return BuiltAdapter(
        model, base_config, adapter_dir, num_layers, lora_parameters, fine_tune_type, sorted(adapter_tensors(model))
    )


def llama_attention_adapter(adapter_dir: str | Path, *, dropout: float = 0.1, num_layers: int = 2) -> BuiltAdapter:
    """Dense llama, LoRA on q/v projections of the last ``num_layers`` layers."""
    return _build(adapter_dir, tiny_llama_config(), num_layers=num_layers, keys=ATTENTION_KEYS, dropout=dropout)


def llama_all_layers_adapter(adapter_dir: str | Path) -> BuiltAdapter:
    """Dense llama, mlx-lm's default module set (no keys) on every layer."""
    return _build(adapter_dir, tiny_llama_config(), num_layers=-1, keys=None)


def gpt_oss_experts_adapter(adapter_dir: str | Path, *, num_layers: int = -1) -> BuiltAdapter:
    """gpt-oss with ``LoRASwitchLinear`` on the expert projections."""
    return _build(adapter_dir, tiny_gpt_oss_config(), num_layers=num_layers, keys=GPT_OSS_EXPERT_KEYS)


def dora_adapter(adapter_dir: str | Path) -> BuiltAdapter:
    """Dense llama, DoRA on q/v projections of every layer (carries ``m``)."""
    return _build(adapter_dir, tiny_llama_config(), num_layers=-1, keys=ATTENTION_KEYS, dora=True)


def embedding_adapter(adapter_dir: str | Path) -> BuiltAdapter:
    """Dense llama, LoRA on ``model.embed_tokens`` (a full-path key) and q_proj."""
    return _build(adapter_dir, tiny_llama_config(), num_layers=-1, keys=EMBEDDING_KEYS)


def _write_numpy_adapter(adapter_dir: Path, tensors: dict[str, Any], config: dict[str, Any]) -> Path:
    from safetensors.numpy import save_file

    adapter_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(adapter_dir / "adapters.safetensors"))
    (adapter_dir / "adapter_config.json").write_text(
        json.dumps(config, indent=4, sort_keys=True), encoding="utf-8"
    )
    return adapter_dir


def legacy_switch_adapter(
    adapter_dir: str | Path, *, num_layers: int = 2, rank: int = 4, base_config: dict[str, Any] | None = None
) -> Path:
    """A header-level file in the pre-0.28.3 switch layout: lora_a ``(r*E, in)``, lora_b ``(E, out, r)``.

    Current mlx-lm cannot reload it; it exists for the shape lint.
    """
    import numpy as np

    cfg = base_config or tiny_gpt_oss_config(num_layers)
    experts, hidden, inter = cfg["num_local_experts"], cfg["hidden_size"], cfg["intermediate_size"]
    dims = {"gate_proj": (hidden, inter), "up_proj": (hidden, inter), "down_proj": (inter, hidden)}
    rng = np.random.default_rng(0)
    tensors = {}
    for layer in range(cfg["num_hidden_layers"] - num_layers, cfg["num_hidden_layers"]):
        for proj, (d_in, d_out) in dims.items():
            name = f"model.layers.{layer}.mlp.experts.{proj}"
            tensors[f"{name}.lora_a"] = rng.normal(size=(rank * experts, d_in)).astype(np.float32)
            tensors[f"{name}.lora_b"] = rng.normal(size=(experts, d_out, rank)).astype(np.float32)
    config = {
        "fine_tune_type": "lora",
        "num_layers": num_layers,
        "lora_parameters": {"rank": rank, "scale": 20.0, "dropout": 0.0, "keys": GPT_OSS_EXPERT_KEYS},
    }
    return _write_numpy_adapter(Path(adapter_dir), tensors, config)


def vlm_prefixed_adapter(
    adapter_dir: str | Path, *, num_layers: int = 2, rank: int = 4, base_config: dict[str, Any] | None = None
) -> Path:
    """A header-level file with a VLM language tower's names: ``language_model.model.layers.N...``."""
    import numpy as np

    cfg = base_config or tiny_llama_config()
    hidden = cfg["hidden_size"]
    head_dim = hidden // cfg["num_attention_heads"]
    dims = {"q_proj": (hidden, hidden), "v_proj": (hidden, cfg["num_key_value_heads"] * head_dim)}
    rng = np.random.default_rng(0)
    tensors = {}
    for layer in range(cfg["num_hidden_layers"] - num_layers, cfg["num_hidden_layers"]):
        for proj, (d_in, d_out) in dims.items():
            name = f"language_model.model.layers.{layer}.self_attn.{proj}"
            tensors[f"{name}.lora_a"] = rng.normal(size=(d_in, rank)).astype(np.float32)
            tensors[f"{name}.lora_b"] = rng.normal(size=(rank, d_out)).astype(np.float32)
    config = {
        "fine_tune_type": "lora",
        "num_layers": num_layers,
        "lora_parameters": {"rank": rank, "scale": 20.0, "dropout": 0.0, "keys": ATTENTION_KEYS},
    }
    return _write_numpy_adapter(Path(adapter_dir), tensors, config)


#: The live layouts the MLX tests share: name -> (base config, ``make_live_adapter`` keywords).
#: Issue 3 asks for exactly these: attention keys with dropout 0.1, switch LoRA on
#: gpt-oss experts, DoRA, and embedding LoRA.
def live_layouts() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    llama, gpt_oss = tiny_llama_config(), tiny_gpt_oss_config()
    return {
        "llama-attention": (llama, dict(num_layers=2, keys=ATTENTION_KEYS, dropout=0.1)),
        "gpt-oss-experts": (gpt_oss, dict(num_layers=-1, keys=GPT_OSS_EXPERT_KEYS)),
        "dora": (llama, dict(num_layers=-1, keys=ATTENTION_KEYS, dora=True)),
        "embedding": (llama, dict(num_layers=-1, keys=EMBEDDING_KEYS)),
    }
