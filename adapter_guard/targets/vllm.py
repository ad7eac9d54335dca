"""The vLLM target profile: will ``--enable-lora`` serving load this PEFT adapter?

vLLM needs a GPU build, so the table was read from vLLM's own source at the
release tags (the sdists on PyPI, which hold the tagged tree): ``PEFTHelper``
(``vllm/lora/peft_helper.py``, from 0.6.5) reads ``adapter_config.json`` and
``validate_legal`` refuses what vLLM cannot serve; ``from_local_checkpoint`` /
``from_lora_tensors`` (``vllm/lora/models.py``, ``lora_model.py`` from 0.20)
read ``adapter_model.safetensors`` (or ``.bin``/``.pt``) and hand every tensor
name to ``parse_fine_tuned_lora_name`` (``vllm/lora/utils.py``), which raises
"... is unsupported LoRA weight" on any name it does not know.

``max_lora_rank`` is a serve flag, not part of the adapter. Given as an option
(``--target vllm:max_lora_rank=64``) the check is exact: a larger rank is an
error. Without it the lint cannot know the flag, so only what no flag can fix is
an error (a rank above the largest value vLLM accepts for ``--max-lora-rank``:
256 before 0.8.0, 512 since), and a rank above vLLM's default of 16 is an INFO
finding (AG902) that names the flag and never fails a run: serving without the
flag refuses the adapter, serving with it loads it, and both are common.

Version boundaries (first release with the behaviour):
0.6.4 bias tensors parsed (need ``--enable-lora-bias``); 0.6.5 ``PEFTHelper``
refuses ``modules_to_save``, DoRA and rsLoRA; 0.7.0 rsLoRA scale honoured, config
``bias`` needs ``--enable-lora-bias``; 0.8.0 ``max_lora_rank`` up to 512; 0.11.1
bias refused outright; 0.18.0 the full base embedding PEFT saves beside an
embedding LoRA is skipped instead of refused; 0.31.0 ``modules_to_save`` of a
classification head (``classifier``/``score``) accepted; 0.32.0 ``rank_pattern``
and ``alpha_pattern`` honoured, ``lora_bias``, PiSSA-style inits, aLoRA,
``layer_replication``, BD-LoRA and QALoRA refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from ..formats.peft import PATTERN_SECONDS, PREFIX, PatternTimeout, pattern_key, split_tensors, time_budget
from ..readers import PEFT_WEIGHTS
from .model import Context, Profile, TargetRule, Verdict, Version

TAG = "https://github.com/vllm-project/vllm/blob/"
LATEST = "0.33.0"

#: The default of ``--max-lora-rank`` (EngineArgs.max_lora_rank at v0.6.0 .. LoRAConfig at v0.33.0).
DEFAULT_MAX_LORA_RANK = 16
#: The values ``--max-lora-rank`` accepts (LoRAConfig's possible_max_ranks / MaxLoRARanks).
MAX_LORA_RANKS_BEFORE_0_8 = (8, 16, 32, 64, 128, 256)
MAX_LORA_RANKS_BEFORE_0_11_1 = (8, 16, 32, 64, 128, 256, 320, 512)
MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)

#: ``init_lora_weights`` strings vLLM 0.32+ accepts (PEFTHelper._init_is_supported).
SUPPORTED_INITS = ("gaussian", "eva", "orthogonal", "mica", "lora_ga")
#: Classification heads vLLM 0.31+ accepts in ``modules_to_save``.
CLASSIFIER_MODULES = ("classifier", "score")
#: Full embedding weights PEFT saves beside an embedding LoRA; vLLM 0.18+ skips them.
BASE_EMBEDDING_SUFFIXES = (".embed_tokens.base_layer.weight", ".lm_head.base_layer.weight")
LORA_LEAVES = (".lora_A.weight", ".lora_B.weight")
EMBEDDING_LEAVES = (".lora_embedding_A", ".lora_embedding_B")
MAGNITUDE_LEAF = ".lora_magnitude_vector"


def _v(text: str) -> Version:
    return tuple(int(p) for p in text.split("."))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def _shapes(ctx: Context) -> dict[str, tuple[int, ...]] | None:
    """The safetensors header vLLM reads first; None for a ``.bin`` (pickles are never opened)."""
    return ctx.shapes(PEFT_WEIGHTS)


def _show(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _modules_to_save(ctx: Context) -> list[str]:
    saved = ctx.config.get("modules_to_save")
    return [m for m in saved if isinstance(m, str)] if isinstance(saved, list) else []


def _module_of(name: str) -> str:
    """The module a tensor name belongs to, PEFT prefix and leaf dropped: ``lm_head`` for ``...lm_head.weight``."""
    name = name[len(PREFIX):] if name.startswith(PREFIX) else name
    return name.rsplit(".", 1)[0]


def _saved_copy_of(name: str, modules: list[str]) -> str | None:
    """The ``modules_to_save`` entry a full-weight tensor was saved for (PEFT: the module's plain name)."""
    module = _module_of(name)
    for entry in modules:
        if module == entry or module.endswith("." + entry):
            return entry
    return None


def _is_bias(name: str) -> bool:
    return name.endswith(".bias")


# -- the rank -----------------------------------------------------------------------------


def allowed_max_lora_ranks(version: Version) -> tuple[int, ...]:
    if version < (0, 8):
        return MAX_LORA_RANKS_BEFORE_0_8
    if version < (0, 11, 1):
        return MAX_LORA_RANKS_BEFORE_0_11_1
    return MAX_LORA_RANKS


def adapter_rank(config: dict[str, Any]) -> tuple[int, str] | None:
    """The largest rank vLLM must hold, and where it is written: ``r`` or a ``rank_pattern`` value.

    vLLM 0.32+ compares ``max([r, *rank_pattern.values()])`` with max_lora_rank; older releases
    compare ``r`` and then fail copying a larger per-module rank into buffers of max_lora_rank.
    """
    ranks: list[tuple[int, str]] = []
    if _is_int(config.get("r")):
        ranks.append((config["r"], f"r={config['r']}"))
    pattern = config.get("rank_pattern")
    for key, value in pattern.items() if isinstance(pattern, dict) else ():
        if _is_int(value):
            ranks.append((value, f"rank_pattern[{key!r}]={value}"))
    return max(ranks, key=lambda item: item[0]) if ranks else None


def _flag_value(rank: int, allowed: tuple[int, ...]) -> int:
    """The smallest ``--max-lora-rank`` value that holds ``rank``."""
    return min(v for v in allowed if v >= rank)


def check_rank(ctx: Context) -> Iterator[Verdict]:
    found = adapter_rank(ctx.config)
    if found is None:
        return
    rank, where = found
    allowed = allowed_max_lora_ranks(ctx.version)
    path = ("r",) if where.startswith("r=") else ("rank_pattern",)
    if rank > allowed[-1]:
        yield Verdict(
            f"{where} exceeds the largest max_lora_rank vLLM accepts ({allowed[-1]}; --max-lora-rank takes "
            f"{', '.join(map(str, allowed))}); no serve flag loads it: retrain at rank {allowed[-1]} or lower",
            path,
        )
        return
    limit = ctx.options.get("max_lora_rank")
    if limit is not None and rank > limit:
        yield Verdict(
            f"{where} exceeds vLLM's max_lora_rank {limit}; serve with --max-lora-rank "
            f"{_flag_value(rank, allowed)} (or use a lower-rank adapter)",
            path,
        )


def check_rank_above_default(ctx: Context) -> Iterator[Verdict]:
    if "max_lora_rank" in ctx.options:
        return  # the user said which flag the server runs with: check_rank decides
    found = adapter_rank(ctx.config)
    if found is None:
        return
    rank, where = found
    allowed = allowed_max_lora_ranks(ctx.version)
    if DEFAULT_MAX_LORA_RANK < rank <= allowed[-1]:
        yield Verdict(
            f"{where} exceeds vLLM's default max_lora_rank {DEFAULT_MAX_LORA_RANK}: serving without "
            f"--max-lora-rank {_flag_value(rank, allowed)} (or larger) refuses the adapter; pass the flag, "
            f"or declare it with --target vllm:max_lora_rank={_flag_value(rank, allowed)}",
            ("r",) if where.startswith("r=") else ("rank_pattern",),
        )


# -- DoRA -----------------------------------------------------------------------------------


def _magnitudes(ctx: Context) -> list[str]:
    shapes = _shapes(ctx) or {}
    return sorted(n for n in shapes if n.endswith(MAGNITUDE_LEAF))


def check_dora_tensors(ctx: Context) -> Iterator[Verdict]:
    magnitudes = _magnitudes(ctx)
    if magnitudes:
        yield Verdict(
            f"DoRA magnitude tensors ({_show(magnitudes)}) are refused by vLLM's weight-name parser "
            "(ValueError: unsupported LoRA weight); vLLM serves plain LoRA only: merge the DoRA adapter "
            "into the base, or retrain without use_dora",
            ("use_dora",) if ctx.config.get("use_dora") is True else None,
        )


def check_dora(ctx: Context) -> Iterator[Verdict]:
    magnitudes = _magnitudes(ctx)
    if ctx.config.get("use_dora") is True or magnitudes:
        what = "use_dora is true" if ctx.config.get("use_dora") is True else f"the file holds {_show(magnitudes)}"
        yield Verdict(
            f"{what}: vLLM refuses DoRA adapters (\"vLLM does not yet support DoRA.\"); merge the DoRA "
            "adapter into the base, or retrain without use_dora",
            ("use_dora",) if ctx.config.get("use_dora") is True else None,
        )


# -- bias -----------------------------------------------------------------------------------


def _bias_tensors(ctx: Context) -> list[str]:
    """Every ``.bias`` tensor but the classification head's, which vLLM 0.31+ reads through modules_to_save."""
    shapes = _shapes(ctx) or {}
    heads = [m for m in _modules_to_save(ctx) if m in CLASSIFIER_MODULES] if ctx.version >= (0, 31) else []
    return sorted(n for n in shapes if _is_bias(n) and _saved_copy_of(n, heads) is None)


def _bias_value(ctx: Context) -> str | None:
    bias = ctx.config.get("bias")
    return bias if isinstance(bias, str) and bias != "none" else None


def check_bias_parser(ctx: Context) -> Iterator[Verdict]:
    tensors = _bias_tensors(ctx)
    if tensors:
        yield Verdict(
            f"bias tensors ({_show(tensors)}) are refused by vLLM's weight-name parser (ValueError: "
            "unsupported LoRA weight); retrain with bias=\"none\" and lora_bias=false, or serve on vLLM 0.6.4 to "
            "0.11.0 with --enable-lora-bias",
            ("bias",) if _bias_value(ctx) else None,
        )


def check_bias_flag(ctx: Context) -> Iterator[Verdict]:
    tensors = _bias_tensors(ctx)
    bias = _bias_value(ctx) if ctx.version >= (0, 7) else None
    if tensors or bias:
        what = f"bias={bias!r}" if bias else f"the file holds bias tensors ({_show(tensors)})"
        yield Verdict(
            f"{what}: vLLM refuses adapter biases unless served with --enable-lora-bias; retrain with "
            "bias=\"none\" and lora_bias=false to serve without the flag",
            ("bias",) if bias else None,
        )


def check_bias_refused(ctx: Context) -> Iterator[Verdict]:
    bias = _bias_value(ctx)
    lora_bias = ctx.config.get("lora_bias") is True
    tensors = _bias_tensors(ctx)
    if bias:
        yield Verdict(
            f"bias={bias!r}: vLLM refuses adapter biases (\"Adapter bias is not supported.\"); retrain with "
            "bias=\"none\"",
            ("bias",),
        )
    elif lora_bias and ctx.version >= (0, 32):
        yield Verdict(
            "lora_bias is true: vLLM refuses LoRA biases (\"vLLM does not support LoRA bias (lora_bias).\"); "
            "retrain with lora_bias=false",
            ("lora_bias",),
        )
    elif tensors:
        misread = ctx.version < (0, 32) and ctx.version >= (0, 31)
        how = (
            "vLLM 0.31 reads a `lora_A.bias`/`lora_B.bias` as that factor's weight and refuses other biases"
            if misread
            else "vLLM's weight-name parser refuses them (ValueError: unsupported LoRA weight)"
        )
        yield Verdict(
            f"bias tensors ({_show(tensors)}): {how}; retrain with bias=\"none\" and lora_bias=false",
            ("lora_bias",) if lora_bias else None,
        )


# -- modules_to_save ------------------------------------------------------------------------


def _saved_copies(ctx: Context, modules: list[str]) -> list[str]:
    shapes = _shapes(ctx) or {}
    return sorted(
        n for n in shapes
        if not n.endswith(LORA_LEAVES + EMBEDDING_LEAVES + (MAGNITUDE_LEAF,)) and _saved_copy_of(n, modules)
    )


def check_modules_to_save_parser(ctx: Context) -> Iterator[Verdict]:
    modules = _modules_to_save(ctx)
    copies = _saved_copies(ctx, modules)
    if modules and (copies or _shapes(ctx) is None):
        yield Verdict(
            f"modules_to_save {modules} saves full weights ({_show(copies) or 'in the weights file'}), which "
            "vLLM's weight-name parser refuses (ValueError: unsupported LoRA weight); vLLM serves LoRA factors "
            "only: retrain without modules_to_save, or merge the adapter into the base",
            ("modules_to_save",),
        )


def check_modules_to_save(ctx: Context) -> Iterator[Verdict]:
    modules = _modules_to_save(ctx)
    refused = [m for m in modules if not (ctx.version >= (0, 31) and m in CLASSIFIER_MODULES)]
    if refused:
        allowed = (
            'None or ["classifier", "score"] (a classification head)' if ctx.version >= (0, 31) else "None"
        )
        yield Verdict(
            f"modules_to_save {refused}: vLLM accepts only {allowed} and refuses the adapter; vLLM serves LoRA "
            "factors, not full module weights: retrain without them, or merge the adapter into the base",
            ("modules_to_save",),
        )


# -- tensor names ---------------------------------------------------------------------------


def _unsupported_names(ctx: Context, *, skips_base_embedding: bool) -> list[str]:
    """Names ``parse_fine_tuned_lora_name`` raises on, less those the DoRA, bias and
    modules_to_save rules already report."""
    shapes = _shapes(ctx) or {}
    saved = _modules_to_save(ctx)
    names = []
    for name in shapes:
        if name.endswith(LORA_LEAVES + EMBEDDING_LEAVES + (MAGNITUDE_LEAF,)) or _is_bias(name):
            continue
        if skips_base_embedding and name.endswith(BASE_EMBEDDING_SUFFIXES):
            continue
        if _saved_copy_of(name, saved):
            continue
        names.append(name)
    return sorted(names)


def check_tensor_names(ctx: Context) -> Iterator[Verdict]:
    skips = ctx.version >= (0, 18)
    names = _unsupported_names(ctx, skips_base_embedding=skips)
    if not names:
        return
    base_embedding = [n for n in names if n.endswith(BASE_EMBEDDING_SUFFIXES)]
    hint = (
        "PEFT saves the full base embedding (`base_layer.weight`) when the embedding is a LoRA target; vLLM "
        "skips it from 0.18.0: serve on vLLM >= 0.18, or drop the embedding from target_modules"
        if base_embedding
        else "vLLM loads only lora_A/lora_B (and lora_embedding_A/B) tensors: retrain without the feature "
        "that saved them, or merge the adapter into the base"
    )
    yield Verdict(f"tensors {_show(names)} are refused by vLLM's weight-name parser (ValueError: unsupported LoRA "
                  f"weight); {hint}")


# -- the scale ------------------------------------------------------------------------------


def _scale(alpha: float, rank: int, rslora: bool) -> float:
    return alpha / math.sqrt(rank) if rslora else alpha / rank


def check_patterns_ignored(ctx: Context) -> Iterator[Verdict]:
    """Before 0.32 vLLM scales every module by the global lora_alpha / r; PEFT by each module's own."""
    config = ctx.config
    r, alpha = config.get("r"), config.get("lora_alpha")
    rank_pattern = config.get("rank_pattern") if isinstance(config.get("rank_pattern"), dict) else {}
    alpha_pattern = config.get("alpha_pattern") if isinstance(config.get("alpha_pattern"), dict) else {}
    if not (rank_pattern or alpha_pattern) or not _is_int(r) or r <= 0 or not _is_number(alpha):
        return
    rslora = config.get("use_rslora") is True and ctx.version >= (0, 7)
    served = _scale(alpha, r, rslora)
    shapes = _shapes(ctx)
    if shapes is None:  # no header to name the modules: any entry that changes a scale
        changed = [f"rank_pattern[{k!r}]" for k, v in rank_pattern.items() if _is_int(v) and v > 0 and
                   not math.isclose(_scale(alpha, v, rslora), served)]
        changed += [f"alpha_pattern[{k!r}]" for k, v in alpha_pattern.items() if _is_number(v) and
                    not math.isclose(_scale(v, r, rslora), served)]
    else:
        changed = []
        try:
            with time_budget(PATTERN_SECONDS):
                for name in sorted(split_tensors(shapes).modules):
                    rank_key = pattern_key(rank_pattern, name)
                    alpha_key = pattern_key(alpha_pattern, name, "alpha_pattern")
                    rank = rank_pattern[rank_key] if rank_key is not None else r
                    module_alpha = alpha_pattern[alpha_key] if alpha_key is not None else alpha
                    if not (_is_int(rank) and rank > 0 and _is_number(module_alpha)):
                        continue
                    if not math.isclose(_scale(module_alpha, rank, rslora), served):
                        changed.append(name)
        except PatternTimeout:
            return  # AG717 reports the pattern; nothing is claimed about modules it never matched
    if changed:
        yield Verdict(
            f"rank_pattern/alpha_pattern give {_show(changed)} a scale other than lora_alpha/r = {served:g}, "
            "but vLLM before 0.32 ignores both patterns and scales every module by lora_alpha/r: the adapter "
            "loads with the wrong scale; serve on vLLM >= 0.32, or retrain with one r and lora_alpha",
            ("alpha_pattern",) if alpha_pattern else ("rank_pattern",),
        )


def _rslora_changes_scale(ctx: Context) -> bool:
    if ctx.config.get("use_rslora") is not True:
        return False
    pattern = ctx.config.get("rank_pattern")
    ranks = [ctx.config.get("r"), *(pattern.values() if isinstance(pattern, dict) else ())]
    return any(_is_int(rank) and rank > 1 for rank in ranks)  # alpha/sqrt(1) == alpha/1


def check_rslora_ignored(ctx: Context) -> Iterator[Verdict]:
    if _rslora_changes_scale(ctx):
        yield Verdict(
            "use_rslora is true but vLLM before 0.6.5 reads only r and lora_alpha and scales by lora_alpha/r, "
            "not lora_alpha/sqrt(r): the adapter loads with the wrong scale; serve on vLLM >= 0.7",
            ("use_rslora",),
        )


def check_rslora_refused(ctx: Context) -> Iterator[Verdict]:
    if ctx.config.get("use_rslora") is True:
        yield Verdict(
            "use_rslora is true: vLLM 0.6.5 and 0.6.6 refuse rsLoRA adapters (\"vLLM does not yet support "
            "RSLoRA.\"); serve on vLLM >= 0.7",
            ("use_rslora",),
        )


# -- the rest of the config -----------------------------------------------------------------


def check_required_keys(ctx: Context) -> Iterator[Verdict]:
    required = ("r", "lora_alpha") if ctx.version < (0, 6, 5) else ("r", "lora_alpha", "target_modules")
    missing = [k for k in required if k not in ctx.config]
    if missing:
        how = "KeyError" if ctx.version < (0, 6, 5) else "ValueError: Missing required configuration fields"
        yield Verdict(
            f"adapter_config.json has no {', '.join(missing)}: vLLM reads them without defaults ({how}), "
            "while PEFT fills in its own; write the values the adapter was trained with"
        )


def check_unsupported_features(ctx: Context) -> Iterator[Verdict]:
    config = ctx.config
    init = config.get("init_lora_weights")
    if isinstance(init, str) and init.lower() not in SUPPORTED_INITS:
        yield Verdict(
            f"init_lora_weights={init!r}: vLLM refuses it (PiSSA, OLoRA, CorDA and LoftQ adapters assume a base "
            "PEFT modifies on load); convert it to a plain LoRA with PEFT's "
            "path_initial_model_for_weight_conversion, or set init_lora_weights to true if the served base "
            "already holds the modified weights",
            ("init_lora_weights",),
        )
    refused = {
        "alora_invocation_tokens": "Activated LoRA (aLoRA)",
        "layer_replication": "layer_replication",
        "use_bdlora": "block-diagonal LoRA (BD-LoRA)",
        "use_qalora": "QALoRA",
    }
    for key, feature in refused.items():
        if config.get(key):
            yield Verdict(f"{key} is set: vLLM does not support {feature} and refuses the adapter", (key,))


def check_format(ctx: Context) -> Iterator[Verdict]:
    yield Verdict(
        f"this is an {ctx.format} adapter; vLLM loads only PEFT LoRA adapters (adapter_config.json with r, "
        "lora_alpha and target_modules, and adapter_model.safetensors or .bin): convert it to PEFT first "
        "(lora_a/lora_b transposed to lora_A (r, in) / lora_B (out, r), keys under base_model.model.)"
    )


def _url(tag: str, path: str, lines: str) -> str:
    first, _, last = lines.partition("-")
    return f"{TAG}v{tag}/{path}#L{first}" + (f"-L{last}" if last else "")


PROFILE = Profile(
    name="vllm",
    display="vLLM",
    package="pip install vllm; serving needs a GPU, so verdicts come from its source and from vLLM 0.31.0 and 0.33.0 config and tensor-name checks run on CPU",
    latest=LATEST,
    loads=frozenset({"peft-lora"}),
    wrong_format=TargetRule(
        "AG900", "*",
        "vllm/lora/lora_model.py v0.33.0 LoRAModel.from_local_checkpoint (adapter_model.safetensors/.bin/.pt "
        "only) and vllm/lora/peft_helper.py PEFTHelper.from_dict (r, lora_alpha, target_modules required)",
        _url("0.33.0", "vllm/lora/lora_model.py", "239-316"),
        check_format,
        "an MLX (mlx-lm, mlx-vlm, adapters.npz) adapter: no adapter_model weights and no PEFT config",
    ),
    rules=(
        TargetRule(
            "AG901", "*",
            "vllm/lora/peft_helper.py v0.33.0 PEFTHelper.validate_legal (max of r and rank_pattern against "
            "max_lora_rank); vllm/config/lora.py v0.33.0 MaxLoRARanks (v0.8.0 / v0.7.3 vllm/config.py "
            "LoRAConfig possible_max_ranks)",
            _url("0.33.0", "vllm/lora/peft_helper.py", "188-202"),
            check_rank,
            "r (or a rank_pattern rank) above max_lora_rank (given, or the largest vLLM accepts)",
        ),
        TargetRule(
            "AG902", "*",
            "vllm/config/lora.py v0.33.0 LoRAConfig.max_lora_rank = 16 (vllm/engine/arg_utils.py v0.6.0 "
            "EngineArgs.max_lora_rank = 16)",
            _url("0.33.0", "vllm/config/lora.py", "27-35"),
            check_rank_above_default,
            "r above the default max_lora_rank 16 when no max_lora_rank was given (info)",
        ),
        TargetRule(
            "AG903", "<0.6.5",
            "vllm/lora/utils.py v0.6.4 parse_fine_tuned_lora_name (no lora_magnitude_vector leaf)",
            _url("0.6.4", "vllm/lora/utils.py", "94-117"),
            check_dora_tensors,
            "DoRA magnitude tensors: unsupported LoRA weight",
        ),
        TargetRule(
            "AG903", ">=0.6.5",
            "vllm/lora/peft_helper.py v0.33.0 PEFTHelper._validate_features (use_dora; since v0.6.5)",
            _url("0.33.0", "vllm/lora/peft_helper.py", "53-87"),
            check_dora,
            "use_dora: \"vLLM does not yet support DoRA.\"",
        ),
        TargetRule(
            "AG904", "<0.6.4",
            "vllm/lora/utils.py v0.6.3 parse_fine_tuned_lora_name (no bias leaf)",
            _url("0.6.3", "vllm/lora/utils.py", "94-114"),
            check_bias_parser,
            "bias tensors: unsupported LoRA weight",
        ),
        TargetRule(
            "AG904", ">=0.6.4,<0.11.1",
            "vllm/lora/models.py v0.11.0 LoRAModelManager.activate_adapter (bias needs --enable-lora-bias; "
            "since v0.6.4) and vllm/lora/peft_helper.py v0.7.0 PEFTHelper.validate_legal (bias_enabled)",
            _url("0.11.0", "vllm/lora/models.py", "424-433"),
            check_bias_flag,
            "bias tensors, or (0.7+) a bias other than \"none\": refused without --enable-lora-bias",
        ),
        TargetRule(
            "AG904", ">=0.11.1",
            "vllm/lora/peft_helper.py v0.33.0 PEFTHelper.validate_legal (bias; since v0.11.1) and "
            "_validate_features (lora_bias; since v0.32.0); vllm/lora/utils.py parse_fine_tuned_lora_name",
            _url("0.33.0", "vllm/lora/peft_helper.py", "188-202"),
            check_bias_refused,
            "bias other than \"none\", lora_bias, or bias tensors: refused",
        ),
        TargetRule(
            "AG905", "<0.6.5",
            "vllm/lora/utils.py v0.6.4 parse_fine_tuned_lora_name (full module weights are no LoRA leaf)",
            _url("0.6.4", "vllm/lora/utils.py", "94-117"),
            check_modules_to_save_parser,
            "modules_to_save copies: unsupported LoRA weight",
        ),
        TargetRule(
            "AG905", ">=0.6.5",
            "vllm/lora/peft_helper.py v0.33.0 PEFTHelper._validate_features (modules_to_save: None only "
            "since v0.6.5; classifier/score also since v0.31.0)",
            _url("0.33.0", "vllm/lora/peft_helper.py", "56-64"),
            check_modules_to_save,
            "modules_to_save other than a classification head: refused",
        ),
        TargetRule(
            "AG906", "*",
            "vllm/lora/utils.py v0.33.0 parse_fine_tuned_lora_name and is_base_embedding_weights (since "
            "v0.18.0), called on every tensor by vllm/lora/lora_model.py LoRAModel.from_lora_tensors",
            _url("0.33.0", "vllm/lora/utils.py", "180-242"),
            check_tensor_names,
            "other tensors (trainable tokens, a resized embedding, before 0.18 the base embedding): unsupported "
            "LoRA weight",
        ),
        TargetRule(
            "AG907", "<0.32",
            "vllm/lora/peft_helper.py v0.31.0 PEFTHelper.__post_init__ (one scale from r and lora_alpha; "
            "rank_pattern/alpha_pattern read from v0.32.0)",
            _url("0.31.0", "vllm/lora/peft_helper.py", "58-65"),
            check_patterns_ignored,
            "rank_pattern/alpha_pattern ignored: modules they cover load with the wrong scale",
        ),
        TargetRule(
            "AG908", "<0.6.5",
            "vllm/lora/models.py v0.6.4 LoRAModel.from_local_checkpoint (reads r and lora_alpha only) and "
            "vllm/lora/lora.py LoRALayerWeights (scale lora_alpha / rank)",
            _url("0.6.4", "vllm/lora/models.py", "277-278"),
            check_rslora_ignored,
            "use_rslora ignored: scale lora_alpha/r instead of lora_alpha/sqrt(r)",
        ),
        TargetRule(
            "AG908", ">=0.6.5,<0.7",
            "vllm/lora/peft_helper.py v0.6.6 PEFTHelper._validate_features (use_rslora refused)",
            _url("0.6.6", "vllm/lora/peft_helper.py", "25-37"),
            check_rslora_refused,
            "use_rslora: \"vLLM does not yet support RSLoRA.\"",
        ),
        TargetRule(
            "AG909", "*",
            "vllm/lora/peft_helper.py v0.33.0 PEFTHelper.from_dict (required r, lora_alpha, target_modules; "
            "since v0.6.5) and vllm/lora/models.py v0.6.4 from_local_checkpoint (config[\"r\"], "
            "config[\"lora_alpha\"])",
            _url("0.33.0", "vllm/lora/peft_helper.py", "155-173"),
            check_required_keys,
            "r, lora_alpha or target_modules missing (PEFT defaults them, vLLM does not)",
        ),
        TargetRule(
            "AG909", ">=0.32",
            "vllm/lora/peft_helper.py v0.33.0 PEFTHelper._validate_features and _init_is_supported (since v0.32.0)",
            _url("0.33.0", "vllm/lora/peft_helper.py", "53-101"),
            check_unsupported_features,
            "init_lora_weights pissa/olora/corda/loftq, aLoRA, layer_replication, BD-LoRA, QALoRA: refused",
        ),
    ),
    options={"max_lora_rank": None},
    notes=(
        "Models `vllm serve --enable-lora` loading a PEFT LoRA folder: PEFTHelper's config checks, "
        "max_lora_rank, and the tensor names vLLM's parser accepts, back to vLLM 0.6. vLLM needs a GPU "
        "build, so the table was read from vLLM's source at each release tag (the boundaries were "
        "bisected over the PyPI sdists); the tests run every rule on adapters written by PEFT's "
        "save_pretrained, and check the config rules at 0.33.0 against vLLM's own PEFTHelper and "
        "LoRAConfig (a CPU install of the wheel) and the tensor-name rules against its "
        "parse_fine_tuned_lora_name; at 0.31.0 vLLM's single scale is compared with the per-module "
        "scales PEFT builds (rank_pattern/alpha_pattern). Give the server's flag as "
        "`--target vllm:max_lora_rank=64`; without "
        "it a rank above vLLM's default of 16 is only an info finding, and an error only above the "
        "largest value --max-lora-rank accepts. Target modules vLLM cannot wrap depend on the base model "
        "and are not checked."
    ),
)
