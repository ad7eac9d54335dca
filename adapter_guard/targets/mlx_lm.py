"""The mlx-lm target profile: what ``mlx_lm.load(model, adapter_path=...)`` does with an adapter, per release.

Read from mlx-lm's own loader at each boundary release: ``apply_lora_layers`` /
``load_adapters`` and ``linear_to_lora_layers`` in ``mlx_lm/tuner/utils.py``
(ml-explore/mlx-examples ``llms/mlx_lm/`` up to 0.21, ml-explore/mlx-lm after).
The boundaries, each checked in the release wheels:

- 0.6.0 (#636): an adapter is a folder, ``adapter_config.json`` + ``adapters.safetensors``;
  before it, ``--adapter-file adapters.npz`` and no config.
- 0.13.1 (#779): DoRA, switched on by ``use_dora``.
- 0.14.2 (#614): ``lora_parameters.alpha`` no longer read; until then it was required and the
  layers scaled by ``scale * alpha / rank``.
- 0.19.0 (#903): ``lora_layers`` -> ``num_layers``, ``use_dora`` -> ``fine_tune_type``
  (``"lora"``/``"dora"``/``"full"``); full fine-tuning starts here.
- 0.21.5 (#1294): ``model.layers[-max(num_layers, 0):]``; from 0.19.0 it was ``-min``, which
  reads -1 as "all but the first layer".
- 0.28.2 (#515): without ``lora_parameters.keys`` every Linear/Switch/Embedding of the
  layers is wrapped; before it, a per-model-type default set (``q_proj``/``v_proj`` for Llama).
- 0.28.3 (#522): LoRASwitchLinear's ``lora_a`` is (experts, r, in), no longer (r * experts, in).
- 0.32.0 (#1727): every tensor is checked against the model before loading; before it,
  ``load_weights(strict=False)`` dropped the tensors no wrapped module takes, silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..findings import Fix
from ..formats.mlx_lm import modules_outside_keys
from ..infer import AdapterShape, infer_adapter, layer_path
from ..readers import MLX_WEIGHTS, NPZ_WEIGHTS
from ..registry import SAFE
from .model import Context, Profile, TargetRule, Verdict

MLX_LM = "https://github.com/ml-explore/mlx-lm/blob"
EXAMPLES = "https://github.com/ml-explore/mlx-examples/blob"
#: mlx-examples commit that set ``__version__ = "0.18.2"`` (mlx-lm lived there until 0.21; no tags).
AT_0_18_2 = "c3e34117"

#: The default module sets of ``linear_to_lora_layers`` before 0.28.2 (when ``keys`` is absent),
#: one per model type, read at mlx-lm v0.28.1 (the longest list; older releases know a subset of
#: these model types with the same sets). A model type outside the list raised ValueError.
PRE_0_28_2_DEFAULT_KEYS: tuple[frozenset[str], ...] = tuple(
    frozenset(keys)
    for keys in (
        # mistral, llama, phi, qwen2, gemma, gpt_oss, ... (and the MoE additions below)
        {"self_attn.q_proj", "self_attn.v_proj"},
        {"self_attn.q_proj", "self_attn.v_proj", "block_sparse_moe.gate"},  # mixtral, phimoe
        {"self_attn.q_proj", "self_attn.v_proj", "mlp.gate", "mlp.shared_expert_gate"},  # qwen2_moe
        {"self_attn.q_proj", "self_attn.v_proj", "mlp.gate"},  # olmoe, qwen3_moe, dots1, Klear
        {"self_attn.q_proj", "self_attn.v_proj", "mlp.router.classifier"},  # longcat_flash
        {"self_attn.q_proj", "self_attn.v_proj", "attention.qkv_proj", "attention.out_proj",  # lille-130m
         "feed_forward.gate_proj", "feed_forward.up_proj", "feed_forward.down_proj"},
        {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate",  # qwen3_next
         "mlp.shared_expert_gate", "linear_attn.in_proj_qkvz", "linear_attn.out_proj", "linear_attn.in_proj_ba",
         "linear_attn.dt_bias"},
        {"attn.c_attn"},  # gpt_bigcode, gpt2
        {"attention.query_key_value"},  # gpt_neox
        {"att_proj"},  # olmo
        {"attn.qkv_proj"},  # openelm
        {"self_attn.qkv_proj"},  # phi3
        {"mixer.Wqkv", "moe.gate"},  # phi-msft
        {"norm_attn_norm.attn.Wqkv", "ffn.router.layer"},  # dbrx
        {"attention.wqkv", "attention.wo"},  # internlm2
        {"self_attn.q_proj", "self_attn.q_a_proj", "self_attn.q_b_proj",  # deepseek_v2/v3, minicpm3
         "self_attn.kv_a_proj_with_mqa", "self_attn.kv_b_proj"},
        {"mixer.in_proj", "mixer.x_proj", "mixer.dt_proj", "mixer.out_proj"},  # mamba
        {"mixer.in_proj", "mixer.out_proj"},  # mamba2
        {"attn.attention.q_proj", "attn.attention.v_proj"},  # exaone
        {"attention.query_key_value", "attention.dense"},  # bailing_moe
        {"mixer.in_proj", "mixer.out_proj", "mixer.q_proj", "mixer.k_proj", "mixer.v_proj",  # nemotron_h
         "mixer.o_proj"},
    )
)


# -- what one release reads ------------------------------------------------------------


def _renamed(version: tuple[int, ...]) -> bool:
    """0.19 reads ``num_layers`` / ``fine_tune_type``; before, ``lora_layers`` / ``use_dora``."""
    return version >= (0, 19)


def _layer_count(config: dict[str, Any], version: tuple[int, ...]) -> Any:
    return config.get("num_layers" if _renamed(version) else "lora_layers")


def _builds_dora(config: dict[str, Any], version: tuple[int, ...]) -> bool:
    if _renamed(version):
        return config.get("fine_tune_type", "lora") == "dora"
    return version >= (0, 13, 1) and bool(config.get("use_dora", False))


def _wrapped_layers(count: int, version: tuple[int, ...]) -> tuple[str, int]:
    """Which layers a release wraps for layer count ``count``: ("all", 0), ("last", n),
    ("skip", k) for all but the first k, or ("none", 0)."""
    if not _renamed(version):  # 0.18: layers[len - lora_layers:], negative means all
        return ("all", 0) if count < 0 else ("last", count) if count > 0 else ("none", 0)
    if version < (0, 21, 5):  # layers[-min(num_layers, 0):] until #1294
        return ("skip", -count) if count < 0 else ("all", 0)
    return ("last", count) if count > 0 else ("all", 0)  # layers[-max(num_layers, 0):]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _adapter_shape(ctx: Context) -> AdapterShape | None:
    shapes = ctx.shapes(MLX_WEIGHTS)
    return infer_adapter(shapes) if shapes is not None else None


def _lora_parameters(config: dict[str, Any]) -> dict[str, Any] | None:
    lora = config.get("lora_parameters")
    return lora if isinstance(lora, dict) else None


def _names(items, limit: int = 4) -> str:
    items = sorted(items)
    shown = ", ".join(f"`{i}`" for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# -- the checks ----------------------------------------------------------------------


def _wrong_format(ctx: Context) -> Iterator[Verdict]:
    if ctx.format == "adapters-npz":
        if ctx.version >= (0, 6):
            yield Verdict(
                f"`{NPZ_WEIGHTS}` without a config is the format of mlx-lm before 0.6; this release loads only "
                f"`{MLX_WEIGHTS}` with an adapter_config.json (FileNotFoundError); convert it (AG821)"
            )
        return
    if ctx.format == "peft-lora":
        yield Verdict(
            "a Hugging Face PEFT adapter (adapter_model.safetensors, lora_A/lora_B): mlx-lm loads only MLX adapters "
            f"(`{MLX_WEIGHTS}` with lora_parameters); load it with PEFT, or convert it to mlx-lm's layout"
        )
    elif ctx.format == "mlx-vlm":
        effect = (
            "refuses it (`contains incompatible tensors`)" if ctx.version >= (0, 32)
            else "loads it with every tensor ignored (no effect)"
        )
        yield Verdict(
            f"an mlx-vlm adapter (module paths from the VLM root, `language_model.`): mlx-lm {effect}; "
            "load it with mlx-vlm"
        )
    elif ctx.format == "mlx-vlm-legacy":
        yield Verdict(
            "an mlx-vlm 0.5 adapter (top-level rank/alpha/dropout, .A/.B tensors): mlx-lm has no "
            f"{'num_layers' if _renamed(ctx.version) else 'lora_layers'} or lora_parameters to read (AttributeError); "
            "load it with mlx-vlm"
        )


#: mlx-lm before 0.6 rebuilds every module as LoRALinear(r=8, alpha=16, scale=10.0), whose
#: ``self.scale = scale * (alpha / r)``: 20, whatever the file's rank.
PRE_0_6_SCALE = 20.0


def _before_0_6(ctx: Context) -> Iterator[Verdict]:
    config, shape = ctx.config, _adapter_shape(ctx)
    lora = _lora_parameters(config)
    scale = lora.get("scale") if lora is not None else None
    lost = []
    if config.get("fine_tune_type") == "full":
        lost.append("a full fine-tune is not an adapter there")
    if shape is not None and shape.has_m:
        lost.append("the DoRA `m` tensors have no module (DoRA came in 0.13.1)")
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale != PRE_0_6_SCALE:
        lost.append(f"lora_parameters.scale {scale!r} is not used: every module gets scale 20")
    if lost:
        yield Verdict(
            "mlx-lm before 0.6 reads no adapter_config.json: `load(..., adapter_file=...)` rebuilds each module "
            "named in the weights file as a LoRALinear with fixed defaults (scale 10 x alpha 16 / rank 8 = 20), so "
            + "; ".join(lost) + "; use mlx-lm 0.6 or later"
        )


def _lora_layers(ctx: Context) -> Iterator[Verdict]:
    config = ctx.config
    if "lora_layers" in config or config.get("fine_tune_type") == "full":
        return  # full fine-tuning does not load before 0.19 at all: see _full
    head = "lora_layers is missing (mlx-lm before 0.19 reads `lora_layers`, not `num_layers`: AttributeError)"
    value = config.get("num_layers")
    if not _is_int(value):
        yield Verdict(f"{head}; set num_layers and lora_layers to the number of adapted final layers")
        return
    # mlx-lm 0.18 wraps ``layers[len - lora_layers:]``: 0 would wrap none, and -1 means all,
    # which is what num_layers <= 0 means since 0.19 (``layers[-max(num_layers, 0):]``).
    spelled = value if value > 0 else -1
    why = "" if spelled == value else f" (num_layers {value} means every layer; 0.18 spells that -1)"
    fix = Fix(SAFE, ((("lora_layers",), spelled),), f"set lora_layers to {spelled} (from num_layers){why}")
    yield Verdict(f"{head}; num_layers says {value}: lora_layers = {spelled}{why}", None, fix)


def _use_dora(ctx: Context) -> Iterator[Verdict]:
    config = ctx.config
    shape = _adapter_shape(ctx)
    if shape is None or not shape.has_m or _builds_dora(config, ctx.version):
        return
    if ctx.version < (0, 13, 1):
        yield Verdict(
            "the adapter is DoRA (`m` tensors) but DoRA arrived in mlx-lm 0.13.1: this release builds plain LoRA "
            "layers and drops the `m` tensors silently (load_weights strict=False); use mlx-lm 0.13.1 or later"
        )
        return
    head = (
        "the adapter is DoRA (`m` tensors) but `use_dora` is not true, and mlx-lm before 0.19 reads only "
        "`use_dora` (not fine_tune_type): it builds plain LoRA layers and drops the `m` tensors silently"
    )
    if config.get("fine_tune_type") == "dora" and "use_dora" not in config:
        fix = Fix(SAFE, ((("use_dora",), True),), "set use_dora to true (from fine_tune_type \"dora\")")
        yield Verdict(f"{head}; fine_tune_type \"dora\" says use_dora = true", None, fix)
    else:
        yield Verdict(f"{head}; set use_dora to true", ("use_dora",) if "use_dora" in config else None)


def _full(ctx: Context) -> Iterator[Verdict]:
    if ctx.config.get("fine_tune_type") == "full":
        yield Verdict(
            "fine_tune_type \"full\" (full fine-tuning) arrived in mlx-lm 0.19: this release does not read "
            "fine_tune_type and would wrap LoRA layers from lora_layers/lora_parameters instead; "
            "use mlx-lm 0.19 or later",
            ("fine_tune_type",),
        )


def _default_keys(ctx: Context) -> Iterator[Verdict]:
    lora = _lora_parameters(ctx.config)
    shape = _adapter_shape(ctx)
    if lora is None or lora.get("keys") is not None or shape is None or not shape.relative_keys:
        return
    if shape.outer_keys or ctx.config.get("fine_tune_type") == "full":
        return  # modules outside the layers are not wrapped without keys on any release (format rule AG401)
    if any(shape.relative_keys <= defaults for defaults in PRE_0_28_2_DEFAULT_KEYS):
        return  # some model type's default set covers them: a q/v adapter from an old trainer
    fix = Fix(SAFE, ((("lora_parameters", "keys"), shape.keys),), "write lora_parameters.keys from the tensors")
    yield Verdict(
        "lora_parameters.keys is absent, and before 0.28.2 mlx-lm then wraps only a per-model-type default set "
        "(`self_attn.q_proj`/`self_attn.v_proj` for Llama-like models) and drops the other tensors silently; "
        f"no model type's set covers {_names(shape.relative_keys)}; the fix writes keys from the tensors "
        "(what mlx-lm 0.28.2+ wraps anyway)",
        ("lora_parameters",),
        fix,
    )


def _ignored_tensors(ctx: Context) -> Iterator[Verdict]:
    """Before 0.32, load_weights(strict=False) drops what the wrapped model does not take, silently."""
    config, version = ctx.config, ctx.version
    shape = _adapter_shape(ctx)
    if shape is None or config.get("fine_tune_type") == "full":
        return
    count = _layer_count(config, version)
    if not _is_int(count):
        return  # the loader raises AttributeError before it reads a tensor (AG811 / AG301 / AG931)
    dropped: list[str] = []
    if shape.foreign:
        dropped.append(f"{len(shape.foreign)} tensor(s) that are not lora_a/lora_b/m ({_names(shape.foreign, 3)})")
    if shape.has_m and not _builds_dora(config, version) and _renamed(version):
        what = f"fine_tune_type is {config['fine_tune_type']!r}" if "fine_tune_type" in config else "no fine_tune_type"
        dropped.append(f"the DoRA `m` tensors ({what}, so plain LoRA layers are built)")
    lora = _lora_parameters(config)
    keys = lora.get("keys") if lora is not None else None
    full_paths = _explicit_full_paths(config)
    if keys is None and shape.outer_keys:
        outer = _names(shape.outer_keys, 3)
        dropped.append(f"the tensors of {outer} (outside the layers: wrapped only when keys name them)")
    if isinstance(keys, list) and all(isinstance(k, str) for k in keys):
        missing = modules_outside_keys(shape, keys)
        if missing:
            dropped.append(f"the tensors of {_names(missing, 3)} (not in lora_parameters.keys)")
    indices = shape.all_layer_indices
    window = _wrapped_layers(count, version)
    if indices and not full_paths and window[0] == "last" and max(indices) - min(indices) + 1 > window[1]:
        name = "num_layers" if _renamed(version) else "lora_layers"
        dropped.append(
            f"the tensors of the layers before the last {count} ({name} = {count}, but layers "
            f"{min(indices)}..{max(indices)} have tensors)"
        )
    elif indices and not full_paths and window[0] == "none":
        dropped.append("every layer's tensors (lora_layers = 0 wraps no layer before 0.19)")
    if dropped:
        yield Verdict(
            "loads without error but ignores " + "; ".join(dropped)
            + ": load_weights(strict=False) drops what no wrapped module takes, so those tensors have no effect "
            "(mlx-lm 0.32 refuses the file)"
        )


def _alpha(ctx: Context) -> Iterator[Verdict]:
    """Until 0.14.2 (#614) to_lora passed ``alpha=config["alpha"]`` and LoRA/DoRA layers used
    ``self.scale = scale * (alpha / r)``; since then ``scale`` is the scale."""
    config, lora = ctx.config, _lora_parameters(ctx.config)
    if lora is None or config.get("fine_tune_type") == "full":
        return
    rank, alpha = lora.get("rank"), lora.get("alpha")
    if "alpha" not in lora:
        head = "lora_parameters.alpha is missing: mlx-lm before 0.14.2 reads config[\"alpha\"] (KeyError)"
        if _is_int(rank) and rank > 0:
            fix = Fix(SAFE, ((("lora_parameters", "alpha"), rank),), f"set lora_parameters.alpha to {rank} (the rank)")
            yield Verdict(
                f"{head} and scales by scale x alpha / rank; alpha = rank = {rank} keeps the scale "
                "(newer mlx-lm does not read alpha)",
                ("lora_parameters",),
                fix,
            )
        else:
            yield Verdict(f"{head}; set it to lora_parameters.rank", ("lora_parameters",))
    elif _is_int(rank) and rank > 0 and isinstance(alpha, (int, float)) and alpha != rank:
        yield Verdict(
            f"lora_parameters.alpha is {alpha!r} and rank {rank}: mlx-lm before 0.14.2 scales by scale x alpha / rank, "
            f"{alpha / rank:g} times the scale newer releases use; alpha = rank loads the same on both",
            ("lora_parameters", "alpha"),
        )


def _negative_num_layers(ctx: Context) -> Iterator[Verdict]:
    """0.19.0-0.21.4 slice ``model.layers[-min(num_layers, 0):]``: -1 skips layer 0 instead of meaning all."""
    count, shape = ctx.config.get("num_layers"), _adapter_shape(ctx)
    if not _is_int(count) or count >= 0 or shape is None or _explicit_full_paths(ctx.config):
        return
    skipped = sorted(i for i in shape.all_layer_indices if i < -count)
    if skipped:
        yield Verdict(
            f"num_layers is {count}, which these releases read as \"skip the first {-count} layer(s)\" "
            f"(layers[-min(num_layers, 0):]), so the tensors of layer(s) {', '.join(map(str, skipped))} are dropped "
            "silently; num_layers 0 means every layer on every release from 0.19 (or use mlx-lm 0.21.5+)",
            ("num_layers",),
        )


def _switch_layout(ctx: Context) -> Iterator[Verdict]:
    """LoRASwitchLinear's lora_a went from (r * experts, in) to (experts, r, in) in 0.28.3 (#522)."""
    shape = _adapter_shape(ctx)
    if shape is None or ctx.config.get("fine_tune_type") == "full":
        return
    old_release = ctx.version < (0, 28, 3)
    wrong = "switch" if old_release else "legacy-switch"
    modules = [m for m, e in shape.modules.items() if e.rank is not None and e.rank.layout == wrong]
    if not modules:
        return
    if old_release:
        yield Verdict(
            f"the expert (SwitchLinear) factors of {_names(modules, 3)} have the (experts, r, in) lora_a of mlx-lm "
            "0.28.3+, but before 0.28.3 LoRASwitchLinear holds (r * experts, in): the load does not check shapes "
            "(strict=False) and the experts' forward pass fails or computes garbage; use mlx-lm 0.28.3 or later"
        )
    else:
        effect = (
            "refuses them (shape mismatch)" if ctx.version >= (0, 32)
            else "loads them unchecked (strict=False) into the wrong shape"
        )
        yield Verdict(
            f"the expert (SwitchLinear) factors of {_names(modules, 3)} have the (r * experts, in) lora_a of mlx-lm "
            f"before 0.28.3; since 0.28.3 LoRASwitchLinear holds (experts, r, in) and this release {effect}; "
            "load it with mlx-lm 0.28.2 or reshape lora_a to (experts, r, in)"
        )


def _explicit_full_paths(config: dict[str, Any]) -> bool:
    lora = _lora_parameters(config)
    keys = lora.get("keys") if lora is not None else None
    return isinstance(keys, list) and bool(keys) and all(isinstance(k, str) and layer_path(k) for k in keys)


# -- the table -----------------------------------------------------------------------

WRONG_FORMAT = TargetRule(
    "AG930", "*",
    "mlx_lm/tuner/utils.py load_adapters at v0.31.3 (config + adapters.safetensors, strict=False) and at d53e70f7 "
    "(0.32.0, tensors checked); mlx-lm 0.5.0 mlx_lm/tuner/utils.py apply_lora_layers (adapters.npz)",
    f"{MLX_LM}/v0.31.3/mlx_lm/tuner/utils.py#L113-L138",
    _wrong_format,
    "a PEFT, mlx-vlm or (from 0.6) adapters.npz adapter: refused, or loaded with every tensor ignored",
)

RULES = (
    TargetRule(
        "AG931", ">=0.6,<0.19",
        f"mlx-examples {AT_0_18_2} (0.18.2) llms/mlx_lm/tuner/utils.py apply_lora_layers: config.lora_layers",
        f"{EXAMPLES}/{AT_0_18_2}/llms/mlx_lm/tuner/utils.py#L156-L179",
        _lora_layers,
        "no `lora_layers` (only `num_layers`): AttributeError",
    ),
    TargetRule(
        "AG932", ">=0.6,<0.19",
        f"mlx-examples {AT_0_18_2} (0.18.2) llms/mlx_lm/tuner/utils.py apply_lora_layers: "
        "getattr(config, \"use_dora\", False); DoRA since 42458914 (#779, 0.13.1)",
        f"{EXAMPLES}/{AT_0_18_2}/llms/mlx_lm/tuner/utils.py#L172-L178",
        _use_dora,
        "a DoRA adapter without `use_dora: true`: loads as plain LoRA, `m` tensors dropped",
    ),
    TargetRule(
        "AG933", ">=0.6,<0.19",
        "mlx-examples 50e5ca81 (#903, first in 0.19.0) llms/mlx_lm/tuner/utils.py load_adapters: fine_tune_type "
        "and full fine-tuning start here",
        f"{EXAMPLES}/50e5ca81/llms/mlx_lm/tuner/utils.py#L159-L184",
        _full,
        "`fine_tune_type: \"full\"`: not read; LoRA layers are built instead",
    ),
    TargetRule(
        "AG934", ">=0.6,<0.32",
        "mlx_lm/tuner/utils.py load_adapters at v0.31.3: model.load_weights(..., strict=False); the tensor check "
        "came with d53e70f7 (#1727, first in 0.32.0)",
        f"{MLX_LM}/v0.31.3/mlx_lm/tuner/utils.py#L113-L138",
        _ignored_tensors,
        "tensors no wrapped module takes (extra leaves, `m` without DoRA, modules outside keys or layers): "
        "dropped silently",
    ),
    TargetRule(
        "AG935", ">=0.6,<0.28.2",
        "mlx_lm/tuner/utils.py linear_to_lora_layers at v0.28.1: per-model-type default keys; "
        "every Linear from 16ca0b3a (#515, first in 0.28.2)",
        f"{MLX_LM}/v0.28.1/mlx_lm/tuner/utils.py#L83-L217",
        _default_keys,
        "no `lora_parameters.keys` and tensors beyond the model type's default set (q/v): those are dropped",
    ),
    TargetRule(
        "AG936", "<0.6",
        "mlx-examples d661440d (the parent of 2bd64b78, #636, which made the adapter folder in 0.6.0) "
        "llms/mlx_lm/tuner/utils.py apply_lora_layers(model, adapter_file) and tuner/lora.py LoRALinear "
        "(r=8, alpha=16, scale=10.0; self.scale = scale * alpha / r)",
        f"{EXAMPLES}/d661440d/llms/mlx_lm/tuner/utils.py#L99-L128",
        _before_0_6,
        "no config is read: every module gets scale 20, DoRA `m` and full weights have nowhere to go",
    ),
    TargetRule(
        "AG937", ">=0.19,<0.21.5",
        "llms/mlx_lm/tuner/utils.py linear_to_lora_layers at mlx-examples 1cbf5cda (as in the 0.21.4 wheel): "
        "model.layers[-min(num_layers, 0):] "
        "(since 50e5ca81, #903); -max from 85669451 (#1294, first in 0.21.5)",
        f"{EXAMPLES}/1cbf5cda/llms/mlx_lm/tuner/utils.py#L157",
        _negative_num_layers,
        "a negative `num_layers` with tensors in the first layers: those layers are skipped, their tensors dropped",
    ),
    TargetRule(
        "AG938", ">=0.6",
        "mlx_lm/tuner/lora.py LoRASwitchLinear: lora_a (r * num_experts, in) until v0.28.2, "
        "(num_experts, r, in) from 0edd0a0c (#522, first in 0.28.3)",
        f"{MLX_LM}/v0.28.3/mlx_lm/tuner/lora.py#L103-L198",
        _switch_layout,
        "expert (SwitchLinear) factors in the other release's lora_a layout: broken forward pass, or refused (0.32)",
    ),
    TargetRule(
        "AG939", ">=0.6,<0.14.2",
        "mlx-examples 81318ad4 (the parent of c457a3f8, #614, first in 0.14.2) llms/mlx_lm/tuner/utils.py "
        "linear_to_lora_layers: alpha=config[\"alpha\"]; tuner/lora.py LoRALinear: self.scale = scale * (alpha / r)",
        f"{EXAMPLES}/81318ad4/llms/mlx_lm/tuner/utils.py#L67-L85",
        _alpha,
        "no `lora_parameters.alpha`: KeyError; an alpha other than the rank: another scale",
    ),
)

PROFILE = Profile(
    name="mlx-lm",
    display="mlx-lm",
    package="pip install mlx-lm",
    latest="0.32.2",
    loads=frozenset({"mlx-lm", "mlx-lm-pre-0.19"}),
    wrong_format=WRONG_FORMAT,
    rules=RULES,
    notes=(
        "Models `mlx_lm.load(model, adapter_path=...)`, i.e. `load_adapters` (`apply_lora_layers` before 0.19) "
        "and `linear_to_lora_layers` in `mlx_lm/tuner/utils.py`, at each release where they changed: the adapter "
        "folder (0.6.0), DoRA (0.13.1), `alpha` no longer read (0.14.2), `lora_layers`/`use_dora` renamed "
        "`num_layers`/`fine_tune_type` with full fine-tuning (0.19.0), the negative-`num_layers` slice fixed "
        "(0.21.5), every Linear wrapped without `keys` (0.28.2), the expert factors' new `lora_a` layout (0.28.3), "
        "and the tensor check that ended `strict=False`'s silent drops (0.32.0); each boundary was read in the "
        "release wheels. The verdicts were confirmed by loading real-writer adapters (the stock `mlx_lm lora` "
        "trainer of 0.32.2, and 0.18.2's) on the trainer's tiny base with mlx-lm 0.18.2, 0.21.4, 0.28.2, 0.31.3 "
        "and 0.32.2 (0.5.0 and 0.13.0, whose Llama needs an untied head, on an untied base with stock mlx-lm LoRA "
        "layers), comparing logits and the loader's own parameters with the file (dropped or misshapen tensors); "
        "the safe fixes (`lora_layers`, `use_dora`, `keys`, `alpha`) load identically on the old release and on "
        "0.32.2. From 0.32 the tensors the loader refuses are what the format rules (AG103, AG203, AG302, AG305, "
        "AG402, AG811) already report; there the profile adds only the wrong-format verdict and the pre-0.28.3 "
        "expert layout."
    ),
)
