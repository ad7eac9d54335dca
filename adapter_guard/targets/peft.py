"""The PEFT target profile: will ``PeftModel.from_pretrained`` of release X load this adapter as written?

Read from huggingface/peft at the release tags (``git show vX:src/peft/...``) and
confirmed by loading real ``save_pretrained`` output with PEFT 0.13.2, 0.14.0, 0.15.0
and 0.21.2 (tests/test_target_peft.py). Pure: it looks at the config and the
safetensors header the lint already read.

The core fact is ``CONFIG_KEYS``: every ``LoraConfig`` field, with the first
release that knows it and its default. A newer PEFT writes every field it has,
unused ones at their defaults, so a config is full of keys an older release never
heard of. Up to 0.13 ``LoraConfig(**config)`` raises TypeError on the first one;
from 0.14 they are dropped with a warning, which is harmless for a key at its
default (PEFT's own comment: "This assumes that removing the unused kwargs will
not affect the default behavior") and silently changes the adapter for a key that
is set (the feature is gone: e.g. ``trainable_token_indices`` dropped leaves the
trained token rows unloaded).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..formats.peft import PATTERN_SECONDS, PatternTimeout, config_match, time_budget, pattern_key, split_tensors
from ..readers import PEFT_WEIGHTS
from .model import Context, Profile, TargetRule, Verdict, Version, format_version, in_range, parse_version

TREE = "https://github.com/huggingface/peft/blob"


@dataclass(frozen=True)
class ConfigKey:
    """One ``LoraConfig`` field: the first release that has it, its default, and whether a set value matters on load."""

    since: str
    default: Any
    #: None when a set value changes the loaded adapter; else why dropping it never does.
    inert: str | None = None


_COMPANION = "read only when init_lora_weights names that initialisation, at training time"

#: Every LoraConfig field (and the PeftConfig fields it inherits), read as the class's annotated
#: fields at each tag from v0.3.0 to v0.20.0 and in the 0.21.2 wheel; none was ever removed.
#: Defaults are 0.21.2's (``dataclasses.fields(LoraConfig)``), as ``save_pretrained`` writes them.
CONFIG_KEYS: dict[str, ConfigKey] = {
    **{
        k: ConfigKey("0.3.0", None)
        for k in ("base_model_name_or_path", "modules_to_save", "peft_type", "target_modules", "task_type")
    },
    "bias": ConfigKey("0.3.0", "none"),
    "fan_in_fan_out": ConfigKey("0.3.0", False),
    "inference_mode": ConfigKey("0.3.0", False, "training mode only; save_pretrained always writes true"),
    "init_lora_weights": ConfigKey("0.3.0", True),
    "lora_alpha": ConfigKey("0.3.0", 8),
    "lora_dropout": ConfigKey("0.3.0", 0.0),
    "r": ConfigKey("0.3.0", 8),
    "auto_mapping": ConfigKey("0.4.0", None, "a note of the base model's class"),
    "layers_pattern": ConfigKey("0.4.0", None),
    "layers_to_transform": ConfigKey("0.4.0", None),
    "revision": ConfigKey("0.4.0", None, "a note of the base model's revision"),
    "alpha_pattern": ConfigKey("0.6.0", {}),
    "rank_pattern": ConfigKey("0.6.0", {}),
    "loftq_config": ConfigKey("0.7.0", {}, _COMPANION),
    "megatron_config": ConfigKey("0.7.0", None),
    "megatron_core": ConfigKey("0.7.0", "megatron.core"),
    "use_rslora": ConfigKey("0.8.0", False),
    "use_dora": ConfigKey("0.9.0", False),
    "layer_replication": ConfigKey("0.10.0", None),
    # From 0.12 PeftConfig.from_json_file deletes it with a warning before the config is built.
    "runtime_config": ConfigKey("0.12.0", None, "deleted from the file on load, with a warning"),
    "eva_config": ConfigKey("0.14.0", None, _COMPANION),
    "exclude_modules": ConfigKey("0.14.0", None),
    "lora_bias": ConfigKey("0.14.0", False),
    "corda_config": ConfigKey("0.15.0", None, _COMPANION),
    "trainable_token_indices": ConfigKey("0.15.0", None),
    "qalora_group_size": ConfigKey("0.16.0", 16, "read only when use_qalora is true"),
    "use_qalora": ConfigKey("0.16.0", False),
    "target_parameters": ConfigKey("0.17.0", None),
    "alora_invocation_tokens": ConfigKey("0.18.0", None),
    "arrow_config": ConfigKey("0.18.0", None),
    "ensure_weight_tying": ConfigKey("0.18.0", False),
    "peft_version": ConfigKey("0.18.0", None, "a note of the PEFT release that saved the adapter"),
    "lora_ga_config": ConfigKey("0.19.0", None, _COMPANION),
    "use_bdlora": ConfigKey("0.19.0", None),
    "monteclora_config": ConfigKey("0.20.0", None),
    "velora_config": ConfigKey("0.20.0", None),
    # Not in v0.20.0, in the main branch after it (0.20.1.dev0) and in the 0.21.2 wheel; no 0.20.1 was released.
    "kasa_config": ConfigKey("0.21.0", None),
}

LATEST = "0.21.2"


def _unset(value: Any, default: Any) -> bool:
    """Whether ``value`` is the default, exactly: PEFT tests some fields with ``is not None``, so an
    empty list is not the same as null (``trainable_token_indices: []`` still adds a token wrapper)."""
    return type(value) is type(default) and value == default


@dataclass(frozen=True)
class UnknownKey:
    key: str
    #: The first release that knows it, None when no release up to LATEST does.
    since: str | None
    #: Dropping it leaves the adapter as written (its default value, or a key that is never read on load).
    harmless: bool


def unknown_keys(config: dict[str, Any], version: Version) -> list[UnknownKey]:
    """The config's keys ``LoraConfig`` of ``version`` has no field for, in file order."""
    found = []
    for key, value in config.items():
        known = CONFIG_KEYS.get(key)
        if known is None:
            found.append(UnknownKey(key, None, False))
        elif in_range(version, f"<{known.since}"):
            found.append(UnknownKey(key, known.since, known.inert is not None or _unset(value, known.default)))
    return found


def _first_few(items: list[str], sep: str, few: int = 5) -> str:
    return sep.join(items[:few]) + (f" and {len(items) - few} more" if len(items) > few else "")


def _by_release(keys: list[UnknownKey]) -> str:
    """``added in 0.14.0: `a`, `b`; in 0.15.0: `c`; defined by no release up to 0.21.2: `d```."""
    groups: dict[str | None, list[str]] = {}
    for k in sorted(keys, key=lambda k: (k.since is None, parse_version(k.since or "0"), k.key)):
        groups.setdefault(k.since, []).append(f"`{k.key}`")
    versions = [f"in {since}: {', '.join(names)}" for since, names in groups.items() if since]
    parts = ["added " + "; ".join(versions)] if versions else []
    if None in groups:
        parts.append(f"defined by no release up to {LATEST}: {', '.join(groups[None])}")
    return "; ".join(parts)


def _needs(keys: list[UnknownKey]) -> str:
    newest = max((parse_version(k.since) for k in keys if k.since is not None), default=None)
    return f"PEFT >= {format_version(newest)}" if newest is not None else "a PEFT that defines them"


def _set_values(config: dict[str, Any], keys: list[UnknownKey]) -> str:
    def added(k: UnknownKey) -> str:
        return f"added in {k.since}" if k.since else f"defined by no release up to {LATEST}"

    return ", ".join(f"`{k.key}` = {json.dumps(config[k.key])} ({added(k)})" for k in keys)


def _refused(ctx: Context) -> Iterator[Verdict]:
    keys = unknown_keys(ctx.config, ctx.version)
    if not keys:
        return
    used = [k for k in keys if not k.harmless]
    advice = []
    if used:
        verb = "is" if len(used) == 1 else "are"
        advice.append(f"{_set_values(ctx.config, used)} {verb} set: upgrade to {_needs(used)}")
    if len(used) < len(keys):
        which = "the others hold" if used else "all hold"
        advice.append(f"{which} their defaults or are never read on load: without them the adapter loads the same")
    yield Verdict(
        f"LoraConfig raises TypeError (\"got an unexpected keyword argument\") on the {len(keys)} key(s) it lacks "
        f"({_by_release(keys)}); {'; '.join(advice)}"
        + ("" if used else "; upgrade to PEFT >= 0.14 (it drops them with a warning) or remove them"),
        json_path=(keys[0].key,),
    )


def _dropped(ctx: Context) -> Iterator[Verdict]:
    used = [k for k in unknown_keys(ctx.config, ctx.version) if not k.harmless and k.since is not None]
    if used:
        yield Verdict(
            f"drops the config keys it lacks, with a warning, and {_set_values(ctx.config, used)} "
            f"{'is' if len(used) == 1 else 'are'} set: the adapter loads without "
            f"{'that feature' if len(used) == 1 else 'those features'} and gives other outputs; "
            f"upgrade to {_needs(used)}",
            json_path=(used[0].key,),
        )


def _ignored(ctx: Context) -> Iterator[Verdict]:
    keys = [k for k in unknown_keys(ctx.config, ctx.version) if k.harmless or k.since is None]
    if keys:
        verdict = "at their defaults or never read on load, so the adapter loads the same"
        if any(k.since is None for k in keys):
            verdict = f"what a key no release up to {LATEST} defines would change is unknown"
        yield Verdict(
            f"warns \"Unexpected keyword arguments\" and ignores {len(keys)} key(s) it lacks ({_by_release(keys)}): "
            f"{verdict}",
            json_path=(keys[0].key,),
        )


# -- rank_pattern / alpha_pattern: how a key is matched, per release ------------------------


def _old_key(patterns: list[str], name: str) -> str | None:
    """Before 0.15 (utils/other.py get_pattern_key, lora/model.py): the first key with ``.*\\.KEY$``."""
    for key in patterns:
        if config_match(rf".*\.{key}$", name, f"pattern key {key!r}"):
            return key
    return None


def pattern_values(config: dict[str, Any], name: str, version: Version) -> tuple[int, Any]:
    """(r, lora_alpha) that PEFT ``version`` gives module ``name`` (rank_pattern/alpha_pattern are dicts)."""
    r, alpha = config.get("r", 8), config.get("lora_alpha", 8)
    ranks, alphas = config.get("rank_pattern") or {}, config.get("alpha_pattern") or {}
    if version >= (0, 15):
        r_key, alpha_key = pattern_key(ranks, name), pattern_key(alphas, name, "alpha_pattern")
    elif version >= (0, 14):
        r_key, alpha_key = _old_key(list(ranks), name), _old_key(list(alphas), name)
    else:  # one list, rank keys first: the first match picks both values
        r_key = alpha_key = _old_key([*ranks, *alphas], name)
    # No key matched: PEFT looks the module's own name up (an exact full-name key).
    r_key, alpha_key = (name if r_key is None else r_key), (name if alpha_key is None else alpha_key)
    return ranks.get(r_key, r), alphas.get(alpha_key, alpha)


def _patterns_valid(config: dict[str, Any]) -> bool:
    """Both pattern fields are objects (or absent/null), one is not empty, and every key compiles."""
    tables = [config.get(field) or {} for field in ("rank_pattern", "alpha_pattern")]
    if not all(isinstance(t, dict) for t in tables) or not any(tables):
        return False
    try:
        for key in (*tables[0], *tables[1]):
            re.compile(rf"(.*\.)?({key})$")
            re.compile(rf".*\.{key}$")
    except re.error:
        return False  # AG716 reports it
    return True


def _pattern_meaning(ctx: Context) -> Iterator[Verdict]:
    shapes = ctx.shapes(PEFT_WEIGHTS)
    if shapes is None or not _patterns_valid(ctx.config):
        return
    latest = parse_version(LATEST)
    refused, rescaled = [], []
    try:
        with time_budget(PATTERN_SECONDS):
            for name, module in sorted(split_tensors(shapes).modules.items()):
                rank = module.rank
                r_now, alpha_now = pattern_values(ctx.config, name, latest)
                if rank is None or rank != r_now:
                    continue  # the format rules (AG705) report tensors no release loads
                r_then, alpha_then = pattern_values(ctx.config, name, ctx.version)
                if r_then != rank:
                    refused.append(f"`{name}` gets r={r_then} but its tensors have r={rank}")
                elif alpha_then != alpha_now:
                    rescaled.append(f"`{name}` gets lora_alpha {alpha_then} instead of {alpha_now}")
    except PatternTimeout:
        return  # AG717 reports the pattern
    if not (refused or rescaled):
        return
    how = "`.*\\.KEY$` (so a `^`-anchored key never matches, and a `|` splits the whole pattern)"
    if ctx.version < (0, 14):
        how += (" and searches rank and alpha keys as one list (a module a rank_pattern key matches never gets "
                "its alpha_pattern value)")
    consequences = []
    if refused:
        consequences.append(f"it refuses the tensors (size mismatch): {_first_few(refused, '; ')}")
    if rescaled:
        consequences.append(f"it loads with a different scale: {_first_few(rescaled, '; ')}")
    yield Verdict(
        f"matches rank_pattern/alpha_pattern keys as {how} (0.15 and later: `(.*\\.)?(KEY)$`): "
        f"{'; and '.join(consequences)}; upgrade to PEFT >= 0.15, or write keys every release reads alike "
        "(a module's full name without `^`, an alternation in brackets: `(q_proj|v_proj)`)",
        json_path=("rank_pattern" if refused else "alpha_pattern",),
    )


# -- layer types -------------------------------------------------------------------------

#: lora_A's number of axes -> (layer, first release with LoRA for it, first release with DoRA for it).
_CONV_LAYERS = {3: ("nn.Conv1d", (0, 15), (0, 16)), 5: ("nn.Conv3d", (0, 14), (0, 14))}


def _layer_types(ctx: Context) -> Iterator[Verdict]:
    shapes = ctx.shapes(PEFT_WEIGHTS)
    if shapes is None:
        return
    dora = ctx.config.get("use_dora") is True
    unsupported: dict[tuple[str, int], list[str]] = {}
    for name, module in sorted(split_tensors(shapes).modules.items()):
        if module.a is None or module.embedding or len(module.a) not in _CONV_LAYERS:
            continue
        layer, lora_since, dora_since = _CONV_LAYERS[len(module.a)]
        if ctx.version < lora_since:
            what = (f"has no LoRA layer for {layer} (from {format_version(lora_since)}) and raises "
                    f"ValueError \"Target module {layer.removeprefix('nn.')}(...) is not supported\"")
        elif dora and ctx.version < dora_since:
            what = f"has no DoRA for {layer} (from {format_version(dora_since)}) and raises NotImplementedError"
        else:
            continue
        unsupported.setdefault((what, len(module.a)), []).append(f"`{name}`")
    for (what, axes), modules in unsupported.items():
        yield Verdict(f"{what}: {_first_few(modules, ', ')} (a {axes}-D lora_A is that layer's kernel); upgrade PEFT")


# -- formats -----------------------------------------------------------------------------------


def _wrong_format(ctx: Context) -> Iterator[Verdict]:
    yield Verdict(
        f"PeftModel.from_pretrained loads only PEFT adapters (adapter_config.json with peft_type and "
        f"`{PEFT_WEIGHTS}` under base_model.model.* names); this is a {ctx.format} adapter: convert it to a PEFT "
        "LoRA folder first (for MLX adapters, e.g. unsloth's convert_mlx_dir_to_peft), or target its own runtime"
    )


PROFILE = Profile(
    name="peft",
    display="PEFT",
    package="pip install peft",
    latest=LATEST,
    loads=frozenset({"peft-lora"}),
    wrong_format=TargetRule(
        "AG920", "*",
        "src/peft/peft_model.py PeftModel.from_pretrained (v0.13.2): the config class comes from "
        "PeftConfig._get_peft_type, which reads peft_type from adapter_config.json (KeyError without it)",
        f"{TREE}/v0.13.2/src/peft/peft_model.py#L482-L492",
        _wrong_format,
        "an mlx-lm, mlx-vlm or converted MLX adapter: not a PEFT folder",
    ),
    rules=(
        TargetRule(
            "AG921", "<0.14",
            "src/peft/config.py PeftConfigMixin.from_peft_type (v0.13.2): config_cls(**kwargs), no filter; "
            "fields of src/peft/tuners/lora/config.py LoraConfig at each tag",
            f"{TREE}/v0.13.2/src/peft/config.py#L113-L119",
            _refused,
            "a config key this release's LoraConfig lacks (a newer PEFT writes them all): TypeError",
        ),
        TargetRule(
            "AG922", ">=0.14",
            "src/peft/config.py PeftConfigMixin.from_peft_type and _check_and_remove_unused_kwargs (v0.14.0, #2038)",
            f"{TREE}/v0.14.0/src/peft/config.py#L146-L170",
            _dropped,
            "a set config key this release lacks (trainable_token_indices, target_parameters, ...) is dropped: "
            "the feature is lost",
        ),
        TargetRule(
            "AG923", ">=0.14",
            "src/peft/config.py _check_and_remove_unused_kwargs (v0.14.0): \"assumes that removing the unused kwargs "
            "will not affect the default behavior\"",
            f"{TREE}/v0.14.0/src/peft/config.py#L31-L43",
            _ignored,
            "config keys this release lacks, at their defaults: dropped with a warning, same adapter",
        ),
        TargetRule(
            "AG924", ">=0.6,<0.15",
            "src/peft/utils/other.py get_pattern_key (v0.14.0: `.*\\.KEY$`; v0.15.0 #2419: `(.*\\.)?(KEY)$`); "
            "src/peft/tuners/lora/model.py _create_and_replace (v0.13.2: rank and alpha keys as one list)",
            f"{TREE}/v0.14.0/src/peft/utils/other.py#L724-L726",
            _pattern_meaning,
            "a `^`-anchored (or start-matching) rank_pattern/alpha_pattern key never matches: other ranks and scales",
        ),
        TargetRule(
            "AG925", "<0.16",
            "src/peft/tuners/lora/model.py LoraModel._create_new_module (v0.13.2: no nn.Conv3d, v0.14.0 #2082 adds "
            "it; v0.14.0: no nn.Conv1d, v0.15.0 #2333 adds it); src/peft/tuners/lora/layer.py "
            "Conv1d._get_dora_layer_class (v0.15.0: NotImplementedError; DoRA for Conv1d from v0.16.0, #2531)",
            f"{TREE}/v0.14.0/src/peft/tuners/lora/model.py#L358-L364",
            _layer_types,
            "LoRA on nn.Conv3d (before 0.14) or nn.Conv1d (before 0.15), DoRA on nn.Conv1d (before 0.16): refused",
        ),
    ),
    notes=(
        "Models `PeftModel.from_pretrained` of each release on a PEFT LoRA folder. The key table (`CONFIG_KEYS` in "
        "adapter_guard/targets/peft.py) lists every LoraConfig field with the first release that has it, read from "
        "the class at every tag from v0.3.0 to v0.20.0 and from the 0.21.2 wheel: up to 0.13 a key the release "
        "lacks is a TypeError, from 0.14 it is dropped with a warning, which only matters when the key is set "
        "(a key at its default is an info). rank_pattern/alpha_pattern keys are matched as each release matched "
        "them, and the tensors say which modules would get another rank (refused) or alpha (other outputs). "
        "Every verdict is confirmed by loading real `save_pretrained` output on a fresh tiny base with PEFT "
        "0.13.2, 0.14.0, 0.15.0 (venvs of their own) and 0.21.2, comparing the outputs with the trained model "
        "(tests/test_target_peft.py)."
    ),
)
