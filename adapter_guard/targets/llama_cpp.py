"""The llama.cpp target: will ``convert_lora_to_gguf.py`` turn this PEFT adapter into a GGUF
adapter that llama.cpp applies the way PEFT does?

The converter (llama.cpp's ``convert_lora_to_gguf.py``, b3400 on) reads
``adapter_config.json`` and ``adapter_model.safetensors`` (or ``.bin``), keeps the
``lora_A``/``lora_B`` pairs, skips ``base_layer.weight`` copies, stops on any other
tensor ("Unexpected name ...: Not a lora_A or lora_B tensor") and writes one number
from the config: ``lora_alpha``. llama.cpp then scales every pair by
``alpha / rank``, the rank read from that pair's own lora_B (``get_scale`` in
src/llama-adapter.h). So ``rank_pattern`` survives (ranks come from the tensors),
while ``use_rslora`` and ``alpha_pattern`` do not.

Every fact was read at build tag b11312 (commit 0c1e57098, the copy vendored by the
``llama-cpp-python`` 0.3.36 sdist, which tests/test_target_llama_cpp.py runs), and its
version range from the git history of ggml-org/llama.cpp (``git log -S``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from ..formats.peft import PATTERN_SECONDS, PatternTimeout, time_budget, pattern_key, split_tensors
from ..readers import PEFT_WEIGHTS
from .model import Context, Profile, TargetRule, Verdict

#: Line links are at this tag: the release the table was checked against.
TAG = "b11312"
REPO = "https://github.com/ggml-org/llama.cpp/blob"
CONVERTER = "convert_lora_to_gguf.py"

#: b4446 (#11131) taught the converter mergekit's ``lora_embedding_A/B`` pairs and norm
#: vectors (b3400, #8332, added the converter: the rules' ranges say so).
EMBEDDING_LORA = (4446,)
#: b3959 (#9948) added the "Embeddings is present in the adapter" hint.
EMBEDDINGS_MESSAGE = (3959,)

#: PEFT's ``lora_alpha`` when the config has none (LoraConfig default); the converter
#: itself raises KeyError without it.
PEFT_DEFAULT_ALPHA = 8
PEFT_DEFAULT_R = 8


def _url(path: str, lines: str) -> str:
    return f"{REPO}/{TAG}/{path}#{lines}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: float) -> str:
    """A scale or alpha as a person would type it: 64, 45.254834, 0.5."""
    return f"{value:.8g}"


def _listed(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _shapes(ctx: Context) -> dict[str, tuple[int, ...]] | None:
    return ctx.shapes(PEFT_WEIGHTS)


def _ranks(ctx: Context) -> dict[str, int]:
    """Each adapted module's rank, from its lora_A/lora_B pair (what llama.cpp divides by)."""
    shapes = _shapes(ctx)
    if not shapes:
        return {}
    modules = split_tensors(shapes).modules
    return {name: m.rank for name, m in modules.items() if m.rank is not None}


# -- the converter's view of the tensors (get_tensors in convert_lora_to_gguf.py) -----------


def _kind(key: str, version: tuple[int, ...]) -> str:
    """What the converter at ``version`` does with tensor ``key``: "pair", "skipped", "norm"
    (kept as a norm vector), or why it stops: "dora", "bias", "other"."""
    embedding_pairs = version >= EMBEDDING_LORA
    if ".lora_A.weight" in key or ".lora_B.weight" in key:
        return "pair"
    if ".lora_embedding_A" in key or ".lora_embedding_B" in key:
        return "pair" if embedding_pairs else "other"
    if ".base_layer.weight" in key:
        return "skipped"
    if embedding_pairs and ("_layernorm" in key or ".norm" in key):
        return "norm"
    if key.endswith("lora_magnitude_vector"):
        return "dora"
    if key.endswith(".bias"):
        return "bias"
    return "other"


def _tensors_of(ctx: Context, kind: str) -> list[str]:
    shapes = _shapes(ctx) or {}
    return sorted(k for k in shapes if _kind(k, ctx.version) == kind)


def _stops(names: list[str]) -> str:
    return f"the converter stops at `{names[0]}` (\"Unexpected name ...: Not a lora_A or lora_B tensor\")"


# -- the checks ---------------------------------------------------------------------------


def check_format(ctx: Context) -> Iterator[Verdict]:
    yield Verdict(
        f"{CONVERTER} reads only PEFT adapters (adapter_config.json with {PEFT_WEIGHTS} or adapter_model.bin), "
        f"not this {ctx.format} adapter: convert it to PEFT's layout first, then to GGUF"
    )


def check_no_converter(ctx: Context) -> Iterator[Verdict]:
    yield Verdict(
        f"{CONVERTER} first shipped in b3400 (#8332); this build has no PEFT-to-GGUF adapter converter: "
        "convert with b3400 or newer"
    )


def check_rslora(ctx: Context) -> Iterator[Verdict]:
    config = ctx.config
    if config.get("use_rslora") is not True:
        return
    alpha = config.get("lora_alpha", PEFT_DEFAULT_ALPHA)
    if not _is_number(alpha):
        return  # the format rules report it
    ranks = set(_ranks(ctx).values())
    if not ranks:
        rank_pattern = config.get("rank_pattern")
        values = list(rank_pattern.values()) if isinstance(rank_pattern, dict) else []
        ranks = {v for v in [config.get("r", PEFT_DEFAULT_R), *values] if _is_number(v) and v > 0}
    if not ranks or ranks == {1}:
        return  # alpha/1 == alpha/sqrt(1): the scale is the same
    head = "rsLoRA: llama.cpp conversion will use alpha/r; fold the √r factor into lora_alpha before converting"
    if len(ranks) == 1:
        r = ranks.pop()
        folded = alpha * math.sqrt(r)
        yield Verdict(
            f"{head}: use_rslora is true but the converter reads only lora_alpha, so the GGUF adapter gets scale "
            f"{_number(alpha)}/{r} = {_number(alpha / r)} instead of PEFT's {_number(alpha)}/√{r} = "
            f"{_number(alpha / math.sqrt(r))}; set lora_alpha to {_number(folded)} (= {_number(alpha)} × √{r}) and "
            "use_rslora to false (PEFT then scales it the same)",
            json_path=("use_rslora",),
        )
    else:
        shown = ", ".join(str(r) for r in sorted(ranks))
        yield Verdict(
            f"{head}: use_rslora is true and the modules have ranks {shown}, so no single lora_alpha gives each "
            "its alpha/√r; scale each module's lora_B by √r (or merge the adapter) before converting",
            json_path=("use_rslora",),
        )


def check_alpha_pattern(ctx: Context) -> Iterator[Verdict]:
    config = ctx.config
    patterns = config.get("alpha_pattern")
    alpha = config.get("lora_alpha", PEFT_DEFAULT_ALPHA)
    if not isinstance(patterns, dict) or not patterns or not _is_number(alpha):
        return
    other = {k: v for k, v in patterns.items() if _is_number(v) and v != alpha}
    if not other:
        return
    ranks = _ranks(ctx)
    if ranks:
        try:
            with time_budget(PATTERN_SECONDS):
                hit = {name: key for name in ranks if (key := pattern_key(patterns, name, "alpha_pattern")) in other}
        except PatternTimeout:
            return  # AG717 already says the patterns did not finish
        if not hit:
            return
        names = sorted(hit)
        keys = ", ".join(f"{k!r}: {_number(other[k])}" for k in dict.fromkeys(hit[n] for n in names))
        what = f"{len(names)} module(s) ({_listed(names)})"
    else:
        keys = ", ".join(f"{k!r}: {_number(v)}" for k, v in other.items())
        what = "the modules they match"
    yield Verdict(
        f"alpha_pattern ({keys}) gives {what} another alpha, but the converter writes only lora_alpha "
        f"{_number(alpha)}: llama.cpp scales them by {_number(alpha)}/r instead; scale their lora_B by "
        "alpha/lora_alpha and drop alpha_pattern (or merge the adapter) before converting",
        json_path=("alpha_pattern",),
    )


def _why_stopped(name: str, version: tuple[int, ...]) -> str:
    if name.endswith((".embed_tokens.weight", ".lm_head.weight")):
        said = "\"Embeddings is present in the adapter\": " if version >= EMBEDDINGS_MESSAGE else ""
        return f"full embedding/lm_head weights ({said}new tokens or modules_to_save) are not supported"
    if ".lora_embedding_" in name:
        return "LoRA on the token embedding (lora_embedding_A/B) is converted from b4446 on"
    if "_layernorm" in name or ".norm" in name:
        return "norm vectors are kept from b4446 on"
    return "it converts only LoRA pairs, not whole-module copies (modules_to_save, trainable tokens)"


def check_full_weights(ctx: Context) -> Iterator[Verdict]:
    names = _tensors_of(ctx, "other")
    if not names:
        return
    reasons = "; ".join(dict.fromkeys(_why_stopped(n, ctx.version) for n in names))
    if all(".lora_embedding_" in n or "_layernorm" in n or ".norm" in n for n in names):
        todo = "use b4446 or newer"
    else:
        todo = "drop them (modules_to_save, trainable tokens) or merge the adapter into the base and convert that"
    yield Verdict(
        f"{_stops(names)}: {reasons}; {len(names)} such tensor(s): {_listed(names)}. To convert, {todo}",
        json_path=("modules_to_save",) if ctx.config.get("modules_to_save") else None,
    )


def check_dora(ctx: Context) -> Iterator[Verdict]:
    names = _tensors_of(ctx, "dora")
    if names:
        yield Verdict(
            f"{_stops(names)}: DoRA magnitude vectors ({len(names)}) are not supported; merge the adapter into "
            "the base and convert the merged model",
            json_path=("use_dora",) if "use_dora" in ctx.config else None,
        )


def check_bias(ctx: Context) -> Iterator[Verdict]:
    names = _tensors_of(ctx, "bias")
    if names:
        field = "lora_bias" if any(n.endswith(".lora_B.bias") for n in names) else "bias"
        yield Verdict(
            f"{_stops(names)}: bias tensors ({len(names)}: {_listed(names)}) are not supported; train with "
            "bias=\"none\" and lora_bias=false, or merge the adapter into the base and convert the merged model",
            json_path=(field,) if field in ctx.config else None,
        )


def check_lora_alpha(ctx: Context) -> Iterator[Verdict]:
    if "lora_alpha" not in ctx.config:
        yield Verdict(
            "the config has no lora_alpha: the converter reads lparams[\"lora_alpha\"] and stops with "
            f"KeyError: 'lora_alpha' (PEFT falls back to {PEFT_DEFAULT_ALPHA}); write the alpha the adapter was "
            f"trained with (PEFT has been running it with {PEFT_DEFAULT_ALPHA}) before converting"
        )


def check_norm_ignored(ctx: Context) -> Iterator[Verdict]:
    names = _tensors_of(ctx, "norm")
    if names:
        yield Verdict(
            f"the converter passes {len(names)} norm tensor(s) through ({_listed(names)}), but llama.cpp's "
            "adapter loader skips every `*_norm.weight` (\"TODO: add support for norm vector\"), so the adapter "
            "runs with the base model's norms; merge the adapter into the base if the norms matter",
            json_path=("modules_to_save",) if ctx.config.get("modules_to_save") else None,
        )


#: The Conv1D weights the converter transposes (conversion/gpt2.py, conversion/jais.py): a PEFT pair
#: on them is already in (out, in) order and gets transposed with them.
CONV1D_TRANSPOSED = ("c_attn", "c_proj", "c_fc", "c_fc2")


def check_fan_in_fan_out(ctx: Context) -> Iterator[Verdict]:
    # PEFT sets fan_in_fan_out for Conv1D layers and clears it for Linear ones, so the flag alone
    # is not proof: only pairs on the Conv1D weights the converter transposes go wrong.
    if ctx.config.get("fan_in_fan_out") is not True:
        return
    shapes = _shapes(ctx)
    if shapes is not None:
        modules = sorted(split_tensors(shapes).modules)
    else:
        targets = ctx.config.get("target_modules")
        modules = [t for t in targets if isinstance(t, str)] if isinstance(targets, list) else []
    hit = [m for m in modules if m.rpartition(".")[2] in CONV1D_TRANSPOSED]
    if not hit:
        return
    yield Verdict(
        f"fan_in_fan_out is true and {len(hit)} module(s) are Conv1D layers ({_listed(hit)}): the converter "
        "transposes the base weight and the LoRA pair alike, but PEFT's pair is already in (out, in) order, so "
        "llama.cpp refuses the non-square modules (\"tensor ... has incorrect shape\") and applies the transposed "
        "update to the square ones; merge the adapter into the base and convert the merged model",
        json_path=("fan_in_fan_out",),
    )


# -- the table ------------------------------------------------------------------------------

_GET_TENSORS = f"{CONVERTER} @ {TAG}, LoraModel.get_tensors"

PROFILE = Profile(
    name="llama.cpp",
    display="llama.cpp",
    package="llama.cpp's convert_lora_to_gguf.py (vendored by the llama-cpp-python sdist)",
    latest=TAG,
    tag_prefix="b",
    loads=frozenset({"peft-lora"}),
    wrong_format=TargetRule(
        "AG910", "*",
        f"{CONVERTER} @ {TAG}, __main__: reads adapter_config.json and adapter_model.safetensors (else .bin)",
        _url(CONVERTER, "L354-L370"),
        check_format,
        "an adapter of another format (mlx-lm, mlx-vlm, npz) is not read at all",
    ),
    rules=(
        TargetRule(
            "AG911", ">=3400",
            f"{CONVERTER} @ {TAG}, __main__ (alpha = lparams[\"lora_alpha\"], nothing reads use_rslora); "
            f"src/llama-adapter.h @ {TAG}, llama_adapter_lora_weight::get_scale (alpha / rank)",
            _url(CONVERTER, "L528-L541"),
            check_rslora,
            "use_rslora: the GGUF gets scale alpha/r instead of alpha/sqrt(r)",
        ),
        TargetRule(
            "AG912", ">=3400",
            f"{CONVERTER} @ {TAG}, LoraModel.set_gguf_parameters (one adapter.lora.alpha, nothing reads "
            f"alpha_pattern); src/llama-adapter.h @ {TAG}, get_scale (rank from each lora_b)",
            _url(CONVERTER, "L426-L428"),
            check_alpha_pattern,
            "alpha_pattern: the matched modules get lora_alpha/r instead of their own alpha/r",
        ),
        TargetRule(
            "AG913", ">=3400",
            f"{_GET_TENSORS} (a tensor that is not a LoRA pair, a base_layer copy or, from b4446, a norm or "
            "lora_embedding_A/B exits with \"Unexpected name\"; \"Embeddings is present\" from b3959); "
            "git log -S'lora_embedding_A' -- convert_lora_to_gguf.py: 4d2b3d88 (#11131), b4446",
            _url(CONVERTER, "L470-L482"),
            check_full_weights,
            "full module weights (modules_to_save, embed_tokens/lm_head, trainable tokens) stop the converter",
        ),
        TargetRule(
            "AG914", ">=3400",
            f"{_GET_TENSORS} (lora_magnitude_vector is not a lora_A/lora_B tensor)",
            _url(CONVERTER, "L470-L482"),
            check_dora,
            "DoRA magnitude vectors stop the converter",
        ),
        TargetRule(
            "AG915", ">=3400",
            f"{_GET_TENSORS} (lora_B.bias and base_layer.bias are not lora_A/lora_B tensors)",
            _url(CONVERTER, "L470-L482"),
            check_bias,
            "bias tensors (bias=lora_only/all, lora_bias) stop the converter",
        ),
        TargetRule(
            "AG916", ">=3400",
            f"{CONVERTER} @ {TAG}, __main__ (alpha = lparams[\"lora_alpha\"]: a KeyError without it)",
            _url(CONVERTER, "L528"),
            check_lora_alpha,
            "a config without lora_alpha stops the converter (KeyError)",
        ),
        TargetRule(
            "AG917", ">=4446",
            f"{_GET_TENSORS} (norms kept, from 4d2b3d88 #11131, b4446); src/llama-adapter.cpp @ {TAG}, "
            "llama_adapter_lora_init_impl (`*_norm.weight` skipped: \"TODO: add support for norm vector\")",
            _url("src/llama-adapter.cpp", "L290-L293"),
            check_norm_ignored,
            "norm weights (modules_to_save of a norm) are converted but ignored at load",
        ),
        TargetRule(
            "AG918", ">=3400",
            f"{CONVERTER} @ {TAG}, LoraTorchTensor.transpose/permute, with conversion/gpt2.py GPT2Model.modify_tensors "
            "and conversion/jais.py (transpose c_attn/c_proj/c_fc); "
            f"src/llama-adapter.cpp @ {TAG} (\"has incorrect shape\")",
            _url("conversion/gpt2.py", "L33-L34"),
            check_fan_in_fan_out,
            "fan_in_fan_out (GPT-2 Conv1D): the update is transposed; non-square modules are refused at load",
        ),
        TargetRule(
            "AG919", "<3400",
            "git log -S 'Not a lora_A or lora_B tensor' -- convert_lora_to_gguf.py: added by 97bdd26e (#8332), "
            "first in b3400 (b3353, vendored by llama-cpp-python 0.2.82, has none)",
            "https://github.com/ggml-org/llama.cpp/pull/8332",
            check_no_converter,
            "before b3400 there is no PEFT-to-GGUF adapter converter",
        ),
    ),
    notes=(
        "Models llama.cpp's `convert_lora_to_gguf.py` (b3400 on) followed by llama.cpp's adapter loader: the "
        "converter keeps the lora_A/lora_B pairs, skips `base_layer.weight` copies, stops on any other tensor, "
        "and writes only `lora_alpha`; llama.cpp scales each pair by alpha / (that pair's rank), so `rank_pattern` "
        "is honoured and `use_rslora` / `alpha_pattern` are not. The verdicts were confirmed by running the real "
        "converter (as vendored by the `llama-cpp-python` sdists: 0.3.36 = b11312, 0.3.5 = b4295; 0.2.82 = b3353 "
        "has none) on adapters written by PEFT's `save_pretrained`, and comparing each module's update in the GGUF "
        "(read with the `gguf` package, applied with llama.cpp's loader rules from src/llama-adapter.cpp) with "
        "PEFT's own `get_delta_weight`. llama.cpp's C++ loader itself is not run here (no wheel ships it). The "
        "bounds b3400, b3959 and b4446 come from the repository's git history. Not modelled: a LoRA on `lm_head` "
        "of a model with tied embeddings (the converter refuses it; that needs the base's config)."
    ),
)
