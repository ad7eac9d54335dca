"""Hugging Face PEFT LoRA (and DoRA, rsLoRA) rules, in PEFT's words. Pure.

Facts from the format reference §1, checked against peft 0.21.2's source and
its loader (tests/test_peft_oracle.py). Any key PEFT writes, older or newer, is
legal; nothing is required but ``peft_type``. Fixes touch PEFT's own keys only
(``r``, ``rank_pattern``, ``use_dora``), and only where the tensors prove them.
"""

from __future__ import annotations

import re
import signal
import threading
from contextlib import contextmanager

from ..findings import Fix
from ..readers import PEFT_BIN_WEIGHTS, PEFT_WEIGHTS, MLX_WEIGHTS, AdapterFiles
from ..record import MutableRecord
from ..registry import SAFE
from .shared import Emitter, ModuleWidths, base_width_rules, is_int, is_number, names, pickle_rules, weights_shapes

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the lint path
if TYPE_CHECKING:
    from typing import Any, Iterator

#: Every key of a PEFT model's state dict starts here; PEFT strips it to find the module.
PREFIX = "base_model.model."
#: PEFT's defaults when a key is absent (LoraConfig dataclass fields).
DEFAULT_R = 8
BIAS_VALUES = ("none", "all", "lora_only")
TASK_TYPES = ("SEQ_CLS", "SEQ_2_SEQ_LM", "CAUSAL_LM", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION")

_FACTOR_LEAVES = {
    "lora_A.weight": ("a", False),
    "lora_B.weight": ("b", False),
    "lora_embedding_A": ("a", True),
    "lora_embedding_B": ("b", True),
}
#: Leaves PEFT writes that are not factors, and need no rule of their own.
_OTHER_PEFT_LEAVES = ("lora_B.bias", "base_layer.weight", "base_layer.bias", "token_adapter.trainable_tokens_delta")


class PeftModule(MutableRecord):
    """One adapted module's tensors; ``name`` is PEFT's module name (no ``base_model.model.``)."""

    __slots__ = ("name", "a", "b", "magnitude", "embedding")

    def __init__(self, name: str, a: tuple[int, ...] | None = None, b: tuple[int, ...] | None = None,
                 magnitude: tuple[int, ...] | None = None, embedding: bool = False) -> None:
        self.name = name
        self.a = a
        self.b = b
        self.magnitude = magnitude
        self.embedding = embedding

    @property
    def rank(self) -> int | None:
        """lora_A (r, in, ...) and lora_B (out, r, ...): the rank when both agree."""
        if self.a is None or self.b is None or len(self.a) < 2 or len(self.b) < 2:
            return None
        return self.a[0] if self.a[0] == self.b[1] and self.a[0] > 0 else None


class PeftTensors(MutableRecord):
    __slots__ = ("modules", "plain", "strays")

    def __init__(self, modules: dict[str, PeftModule], plain: dict[str, tuple[int, ...]], strays: list[str]) -> None:
        self.modules = modules
        #: Tensors under plain names (modules_to_save copies, biases, resized embeddings), name -> shape.
        self.plain = plain
        #: LoRA-looking tensors PEFT cannot load under their name (no prefix, an unknown lora_ leaf).
        self.strays = strays


def split_tensors(shapes: dict[str, tuple[int, ...]]) -> PeftTensors:
    modules: dict[str, PeftModule] = {}
    plain: dict[str, tuple[int, ...]] = {}
    strays: list[str] = []
    for key, shape in shapes.items():
        if not key.startswith(PREFIX):
            if ".lora_" in key:
                strays.append(key)
            else:
                plain[key] = shape
            continue
        name = key[len(PREFIX):]
        # The factor leaf ends the name after a dot: its last part (lora_embedding_A) or its last
        # two (lora_A.weight). At most one leaf can match, so no order among them matters.
        head, dot, last = name.rpartition(".")
        path, leaf = (head, _FACTOR_LEAVES.get(last)) if dot else (None, None)
        if leaf is None and dot and last == "weight":
            path, dot, second = head.rpartition(".")
            leaf = _FACTOR_LEAVES.get(second + ".weight") if dot else None
        if leaf is not None:
            factor, embedding = leaf
            module = modules.get(path)
            if module is None:
                module = modules[path] = PeftModule(path)
            setattr(module, factor, shape)
            module.embedding = module.embedding or embedding
        else:
            if name.endswith(".lora_magnitude_vector"):
                path = name[: -len(".lora_magnitude_vector")]
                modules.setdefault(path, PeftModule(path)).magnitude = shape
            elif name.endswith(_OTHER_PEFT_LEAVES):
                continue
            elif ".lora_" in name:
                strays.append(key)
            else:
                plain[name] = shape
    return PeftTensors(modules, plain, strays)


# -- the config's patterns: untrusted regexes, run under a time budget ---------------------
#
# PEFT's patterns are Python regexes from the checked config, and `re` backtracks: `(a+)+$` or
# `(.*a){25}` takes exponential time on a long module name, `.*.*.*.*x` polynomial time. A static
# screen for "dangerous shapes" misses the polynomial ones and flags harmless nested ones
# (`(\w+\.)*q_proj`), and a length cap stops neither, so the bound is a clock: an interval
# timer whose handler raises PatternTimeout. CPython's `re` checks for signals while it
# matches (tests/test_hostile_regex.py proves a catastrophic match is cut short),
# and a thread could not stop it (the match holds the GIL). The timer needs the main thread
# and SIGALRM: every CLI run, hook and Action has both (forked workers included). Elsewhere (a
# library call from another thread, Windows, a host with its own ITIMER_REAL armed) the
# patterns run unbounded, as they would in PEFT.

#: Time for one config's patterns against its module names. Real configs take milliseconds.
PATTERN_SECONDS = 2.0


class PatternTimeout(Exception):
    """The time budget ran out; ``pattern`` names the pattern being matched, when it was one."""

    def __init__(self) -> None:
        super().__init__("the config's patterns did not finish matching in time")
        self.pattern: str | None = None


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Raise PatternTimeout in the block once ``seconds`` have passed (where a timer can be set)."""
    if not (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0  # never take over the host's timer
    ):
        yield
        return
    live = [True]

    def expire(signum, frame):
        if live[0]:
            raise PatternTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        # The timer can fire between these lines: a late PatternTimeout only means the work
        # finished just in time, so it is dropped and the restore is retried.
        while True:
            try:
                live[0] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
                break
            except PatternTimeout:
                continue


def config_match(pattern: str, name: str, shown: str, *, full: bool = False) -> bool:
    """``re.match`` (``re.fullmatch``) of a pattern built from the config. False when it does
    not compile (AG716 says so); a timeout names ``shown``, the config value it came from."""
    try:
        return (re.fullmatch if full else re.match)(pattern, name) is not None
    except re.error:
        return False
    except PatternTimeout as timeout:
        timeout.pattern = timeout.pattern or shown
        raise


def _config_patterns(config: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(field, how a finding names it, the regex PEFT compiles from it) for every pattern in the config."""
    for field_name in ("target_modules", "exclude_modules"):
        if isinstance(config.get(field_name), str):
            yield field_name, f"{field_name} {config[field_name]!r}", config[field_name]
    for field_name in ("rank_pattern", "alpha_pattern"):
        if isinstance(config.get(field_name), dict):
            for key in config[field_name]:
                yield field_name, f"{field_name} key {key!r}", rf"(.*\.)?({key})$"
    saved = config.get("modules_to_save")
    for m in saved if isinstance(saved, list) else ():
        if isinstance(m, str):
            yield "modules_to_save", f"modules_to_save entry {m!r}", rf"(^|.*\.){m}($|\..*)"
    layers, layers_pattern = config.get("layers_to_transform"), config.get("layers_pattern")
    if layers not in (None, []) and layers_pattern:
        for p in _layers_patterns(layers_pattern):
            if isinstance(p, str):
                yield "layers_pattern", f"layers_pattern {p!r}", rf"(?:^|.*?\.){p}\.(?P<idx>\d+)\."


# -- PEFT's matching (tuners_utils.check_target_module_exists, utils.other.get_pattern_key) --


def _fullmatch(pattern: str, name: str, field_name: str) -> bool:
    return config_match(pattern, name, f"{field_name} {pattern!r}", full=True)


def pattern_key(patterns: dict[str, Any], name: str, field_name: str = "rank_pattern") -> str | None:
    """The first key of ``rank_pattern``/``alpha_pattern`` that matches module ``name``, in dict order."""
    for key in patterns:
        if config_match(rf"(.*\.)?({key})$", name, f"{field_name} key {key!r}"):
            return key
    return None


def _layers_patterns(layers_pattern: Any) -> list:
    """PEFT's ``layers_pattern``: a string or a list of them (AG004 reports any other type)."""
    if isinstance(layers_pattern, str):
        return [layers_pattern]
    return layers_pattern if isinstance(layers_pattern, list) else []


def _layer_index(name: str, layers_pattern: Any) -> int | None:
    if not layers_pattern:
        match = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", name)
    else:
        match = None
        for pattern in _layers_patterns(layers_pattern):
            try:
                match = re.match(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.", name)
            except (re.error, TypeError):
                match = None
            except PatternTimeout as timeout:
                timeout.pattern = timeout.pattern or f"layers_pattern {pattern!r}"
                raise
            if match is not None:
                break
    return int(match.group("idx")) if match is not None and len(match.group("idx")) < 100 else None


def _entry_matches(entry: str, name: str, config: dict[str, Any]) -> bool:
    """Whether one list entry of target_modules adapts ``name`` (exact, or suffix plus the layer filter)."""
    if name == entry:
        return True  # an exact full name bypasses layers_to_transform
    if not name.endswith("." + entry):
        return False
    layers = config.get("layers_to_transform")
    if layers is None or layers == []:
        return True
    index = _layer_index(name, config.get("layers_pattern"))
    if index is None:
        return False
    return index == layers if isinstance(layers, int) else isinstance(layers, list) and index in layers


def _excluded(name: str, config: dict[str, Any]) -> str | None:
    exclude = config.get("exclude_modules")
    if isinstance(exclude, str) and _fullmatch(exclude, name, "exclude_modules"):
        return "exclude_modules"
    if isinstance(exclude, list) and any(
        isinstance(e, str) and (name == e or name.endswith("." + e)) for e in exclude
    ):
        return "exclude_modules"
    saved = config.get("modules_to_save")
    if isinstance(saved, list):
        for m in saved:
            if isinstance(m, str) and config_match(rf"(^|.*\.){m}($|\..*)", name, f"modules_to_save entry {m!r}"):
                return "modules_to_save"
    return None


def _parameter_target(name: str, config: dict[str, Any]) -> bool:
    """Whether ``target_parameters`` (LoRA on a bare parameter, e.g. fused MoE experts) names a parameter of ``name``."""
    params = config.get("target_parameters")
    if not isinstance(params, list):
        return False
    owners = {p.rpartition(".")[0] for p in params if isinstance(p, str)}
    return any(name == o or name.endswith("." + o) for o in owners if o)


def targeted(name: str, config: dict[str, Any]) -> bool:
    """Whether PEFT would adapt module ``name`` under this config."""
    return not _excluded(name, config) and _targets(name, config)


def _targets(name: str, config: dict[str, Any]) -> bool:
    """``targeted``, for a module the config does not exclude."""
    if _parameter_target(name, config):
        return True
    targets = config.get("target_modules")
    if isinstance(targets, str):
        return _fullmatch(targets, name, "target_modules")
    layers = config.get("layers_to_transform")
    if layers is None or layers == []:  # no layer filter: _entry_matches is an exact name or a suffix, in C
        entries = [e for e in targets if isinstance(e, str)]
        return name in entries or name.endswith(tuple(["." + e for e in entries]))
    return any(isinstance(e, str) and _entry_matches(e, name, config) for e in targets)


# -- the rules ------------------------------------------------------------------------


def weights_rules(files: AdapterFiles, emit: Emitter) -> dict[str, tuple[int, ...]] | None:
    """Findings about PEFT's weights file; its tensor shapes when they can be checked."""
    bin_only = PEFT_BIN_WEIGHTS in files.entries and PEFT_WEIGHTS not in files.entries
    pickle_rules(files, emit, skip=(PEFT_BIN_WEIGHTS,) if bin_only else ())
    if bin_only:
        emit(
            "AG703",
            f"only `{PEFT_BIN_WEIGHTS}` (a torch pickle) holds the weights; PEFT loads it, but loading can run code: "
            f"convert it to `{PEFT_WEIGHTS}` (its shapes are not checked until then)",
        )
        return None
    also = f"; `{MLX_WEIGHTS}` is MLX's name, which PEFT never reads" if MLX_WEIGHTS in files.entries else ""
    shapes = weights_shapes(
        files, PEFT_WEIGHTS, emit, missing="AG701", unreadable="AG702",
        consequence=f"PeftModel.from_pretrained cannot load it{also}",
    )
    if shapes is not None and not shapes:
        emit("AG702", f"`{PEFT_WEIGHTS}` holds no tensors: PEFT loads it with every adapter key missing")
        return None
    return shapes


def run_rules(config: dict[str, Any], shapes: dict[str, tuple[int, ...]] | None, emit: Emitter,
              base: dict[str, Any] | None = None) -> None:
    """Every PEFT LoRA config rule. ``shapes`` is None when the weights could not be read."""
    _peft_type_rule(config, emit)
    valid = _value_rules(config, emit)
    try:
        with time_budget(PATTERN_SECONDS):
            valid -= _invalid_pattern_rule(config, emit)
            if shapes is None:
                return
            tensors = split_tensors(shapes)
            _stray_rules(tensors, emit)
            modules = _targeted_rules(config, valid, tensors, emit)
    except PatternTimeout as timeout:
        which = timeout.pattern or "the config's patterns"
        emit(
            "AG717",
            f"matching {which} against the module names did not finish in {PATTERN_SECONDS:g} s (a regex that "
            "backtracks catastrophically); PEFT runs it against every module of the model on load and stalls too; "
            "the target, rank and DoRA checks were skipped",
        )
        return
    _modules_to_save_rules(config, tensors, base, emit)
    if base is not None:
        base_width_rules(_widths(modules), base, emit)


def _targeted_rules(config: dict[str, Any], valid: set[str], tensors: PeftTensors, emit: Emitter) -> dict[str, PeftModule]:
    """The rules that run the config's patterns; returns the modules PEFT adapts."""
    modules = tensors.modules
    if "target_modules" in valid and config.get("target_modules") is not None:
        # Each module's answers once, in module order (the patterns are the slow part,
        # and which one runs out of time first is the one AG717 names).
        excluded: dict[str, str | None] = {}
        adapted: dict[str, bool] = {}
        for name in modules:
            why = excluded[name] = _excluded(name, config)
            adapted[name] = not why and _targets(name, config)
        _coverage_rules(config, tensors, emit, excluded, adapted)
        modules = {n: m for n, m in modules.items() if adapted[n]}
    _factor_rules(modules, emit)
    if "r" in valid and "rank_pattern" in valid:
        _rank_rules(config, modules, emit)
    if "rank_pattern" in valid and "alpha_pattern" in valid:
        _pattern_key_rules(config, modules, emit)
    _dora_rules(config, modules, emit)
    return modules


def _invalid_pattern_rule(config: dict[str, Any], emit: Emitter) -> set[str]:
    """AG716 for each pattern that does not compile as PEFT wraps it; returns the fields whose
    checks must be skipped (an invalid targeting pattern leaves the targeted set unknown)."""
    invalid = set()
    for field_name, label, regex in _config_patterns(config):
        try:
            re.compile(regex)
        except re.error as exc:
            emit(
                "AG716",
                f"{label} is not a valid regular expression ({exc.msg}, as PEFT wraps it: {regex!r}): "
                "PeftModel.from_pretrained raises re.error",
                (field_name,),
            )
            invalid.add(field_name)
    if invalid & {"exclude_modules", "modules_to_save", "layers_pattern"}:
        invalid.add("target_modules")
    return invalid


def _peft_type_rule(config: dict[str, Any], emit: Emitter) -> None:
    if "peft_type" not in config:
        emit("AG704", "peft_type is missing: PeftModel.from_pretrained fails with KeyError: 'peft_type'; PEFT LoRA writes \"LORA\"")
    elif config["peft_type"] != "LORA":
        emit("AG704", f"peft_type is {config['peft_type']!r}: PEFT knows LoRA as \"LORA\" (KeyError otherwise)", ("peft_type",))


def _value_rules(config: dict[str, Any], emit: Emitter) -> set[str]:
    """AG004 for PEFT keys of the wrong type; returns the keys that are usable (absent counts as usable)."""
    valid = set()

    def check(key, ok, want):
        if key not in config or ok(config[key]):
            valid.add(key)
        else:
            emit("AG004", f"{key} must be {want}, not {config[key]!r}", (key,))

    check("r", lambda v: is_int(v) and v > 0, "a positive integer")
    check("lora_alpha", is_number, "a number")
    check("bias", lambda v: v in BIAS_VALUES, "one of " + ", ".join(BIAS_VALUES))
    check("task_type", lambda v: v is None or v in TASK_TYPES, "null or one of " + ", ".join(TASK_TYPES))
    check(
        "target_modules",
        lambda v: v is None or isinstance(v, str) or (isinstance(v, list) and all(isinstance(e, str) for e in v)),
        "a list of module names or a regex string",
    )
    check(
        "layers_pattern",
        lambda v: v is None or isinstance(v, str) or (isinstance(v, list) and all(isinstance(e, str) for e in v)),
        "null, a string or a list of strings",
    )
    if "layers_pattern" not in valid:
        valid.discard("target_modules")  # which layers are adapted is unknown
    for key in ("rank_pattern", "alpha_pattern"):
        check(key, lambda v: v is None or (isinstance(v, dict) and all(is_int(x) and x > 0 or is_number(x) for x in v.values())),
              "an object from module pattern to number")
    return valid


def _stray_rules(tensors: PeftTensors, emit: Emitter) -> None:
    if tensors.strays:
        emit(
            "AG708",
            f"{len(tensors.strays)} tensor(s) have names PEFT does not load (no `{PREFIX}` prefix, or an unknown "
            f"lora_ leaf), so they are dropped silently: {names(tensors.strays)}",
        )


def _coverage_rules(
    config: dict[str, Any], tensors: PeftTensors, emit: Emitter, excluded: dict[str, str | None], adapted: dict[str, bool]
) -> None:
    """``excluded`` and ``adapted``: ``_excluded`` and ``targeted`` of every module."""
    dropped = []
    for name in tensors.modules:
        if not adapted[name]:
            why = excluded[name]
            dropped.append(f"{name} ({why})" if why else name)
    if dropped:
        emit(
            "AG708",
            f"target_modules does not adapt {len(dropped)} module(s) that have tensors; PEFT drops them silently: "
            f"{names(dropped)}" + _string_hint(config),
            ("target_modules",),
        )
    targets = config.get("target_modules")
    if isinstance(targets, list):
        leaves = {n.rpartition(".")[2] for n in tensors.modules}
        unused = [
            e for e in targets
            if isinstance(e, str)
            and not any(_entry_matches(e, n, config) and not excluded[n] for n in tensors.modules)
            and _probably_in_base(e, tensors.modules, leaves)
        ]
        if unused:
            emit(
                "AG709",
                f"target_modules entries with no tensors in the file: {names(unused)}; PEFT gives what they match a "
                "no-op adapter and warns about missing keys",
                ("target_modules",),
            )


#: Module names that come together: a model with one of them has the others. Generic target lists
#: ("q_proj", "query_key_value", ...) name modules of other architectures too, and PEFT says nothing
#: about an entry that matches nothing as long as another one matches.
SIBLINGS = (
    frozenset({"q_proj", "k_proj", "v_proj", "o_proj"}),
    frozenset({"gate_proj", "up_proj", "down_proj"}),
    frozenset({"c_attn", "c_proj", "c_fc"}),
    frozenset({"query", "key", "value"}),
    frozenset({"wq", "wk", "wv", "wo"}),
    frozenset({"w1", "w2", "w3"}),
)


def _probably_in_base(entry: str, modules: dict[str, PeftModule], leaves: set[str]) -> bool:
    """Whether a target entry with no tensors names a module the base has, so that PEFT adapts it.

    True when the entry matches a module with tensors by suffix but was filtered out (its layer
    is not in layers_to_transform), or when it is a sibling of a module with tensors (k_proj
    beside q_proj). Otherwise it most likely names another architecture's module: silence.
    """
    leaf = entry.rpartition(".")[2]
    if any(n == entry or n.endswith("." + entry) for n in modules):
        return True
    return any(leaf in family and family & leaves for family in SIBLINGS)


def _string_hint(config: dict[str, Any]) -> str:
    targets = config.get("target_modules")
    if isinstance(targets, str) and re.fullmatch(r"[\w.]+", targets):
        return f" (a string is a regex matched against the full module name: use \".*{targets}\" or a list)"
    return ""


def _factor_rules(modules: dict[str, PeftModule], emit: Emitter) -> None:
    for name, module in sorted(modules.items()):
        if (module.a is None) != (module.b is None):
            have, lack = ("lora_A", "lora_B") if module.a is not None else ("lora_B", "lora_A")
            emit("AG715", f"`{name}` has {have} but no {lack}: PEFT keeps {lack}'s initial values, so the output is wrong")
        elif module.embedding and module.a is not None and (len(module.a) != 2 or len(module.b) != 2):
            emit("AG712", f"`{name}`: lora_embedding_A {module.a} and lora_embedding_B {module.b} must be (r, num) and (dim, r)")


def _rank_rules(config: dict[str, Any], modules: dict[str, PeftModule], emit: Emitter) -> None:
    r = config.get("r", DEFAULT_R)
    patterns = config.get("rank_pattern") or {}
    wrong, contradicted, ranks = [], [], {}
    for name, module in sorted(modules.items()):
        if module.a is None or module.b is None:
            continue
        rank = module.rank
        if rank is None:
            contradicted.append(f"`{name}`: lora_A {module.a}, lora_B {module.b}")
            continue
        ranks.setdefault(rank, []).append(name)
        key = pattern_key(patterns, name)
        expected = patterns[key] if key is not None else r
        if rank != expected:
            source = f"rank_pattern[{key!r}]" if key is not None else ("r" if "r" in config else "r (default 8)")
            wrong.append((name, rank, expected, source))
    for detail in contradicted:
        emit("AG705", f"lora_A (r, in) and lora_B (out, r) disagree on the rank, {detail}; no rank is read from them")
    if not wrong:
        return
    shown = "; ".join(f"`{n}` has rank {got}, {src} says {want}" for n, got, want, src in wrong[:5])
    more = f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""
    mismatch = f"PEFT would refuse the tensors (size mismatch): {shown}{more}"
    if patterns:
        emit("AG705", f"{mismatch}; rank_pattern is explicit and is not rewritten", ("rank_pattern",))
    elif len(ranks) == 1:
        rank = next(iter(ranks))
        fix = Fix(SAFE, ((("r",), rank),), f"set r to {rank}")
        emit("AG705", f"every module has rank {rank} but r is {r}: {mismatch}", ("r",) if "r" in config else None, fix)
    else:
        entries = {_suffix_key(n, modules): got for n, got, _, _ in wrong}
        fix = None
        if r in ranks:
            fix = Fix(SAFE, ((("rank_pattern",), entries),), f"write rank_pattern for {len(entries)} module(s)")
        detail = ", ".join(f"rank {k}: {len(v)} module(s)" for k, v in sorted(ranks.items()))
        emit(
            "AG706",
            f"modules have different ranks ({detail}) and no rank_pattern gives them: {mismatch}"
            + ("" if fix else f"; r = {r} is none of them, so set r and rank_pattern by hand"),
            ("rank_pattern",) if "rank_pattern" in config else None,
            fix,
        )


def _suffix_key(name: str, modules: dict[str, PeftModule]) -> str:
    """The rank_pattern key a fix writes for ``name``: its shortest dotted suffix that no other
    module ends with, escaped, so every PEFT release from 0.6 matches it to this module only.

    PEFT 0.15 and later match a key as ``(.*\\.)?(KEY)$``, 0.6 to 0.14 as ``.*\\.KEY$``: a proper
    suffix starting at a dot boundary means the same in both. Only when no proper suffix is unique
    is the whole name written (which only 0.15 and later match; ``--target peft@...`` says so).
    """
    parts = name.split(".")
    for k in range(1, len(parts)):
        suffix = ".".join(parts[-k:])
        if not any(other != name and (other == suffix or other.endswith("." + suffix)) for other in modules):
            if parts[-k].isdigit() and k + 1 < len(parts):
                suffix = ".".join(parts[-k - 1:])  # "layers.0.self_attn.q_proj" reads better than "0.self_attn..."
            return re.escape(suffix)
    return re.escape(name)


def _pattern_key_rules(config: dict[str, Any], modules: dict[str, PeftModule], emit: Emitter) -> None:
    if not modules:
        return
    for field_name in ("rank_pattern", "alpha_pattern"):
        patterns = config.get(field_name) or {}
        unused = []
        for key in patterns:
            if not any(config_match(rf"(.*\.)?({key})$", n, f"{field_name} key {key!r}") for n in modules):
                unused.append(key)
        if unused:
            emit(
                "AG707",
                f"{field_name} keys that match no module with tensors (matched as `(.*\\.)?(KEY)$`): {names(unused)}",
                (field_name,),
            )


def _dora_rules(config: dict[str, Any], modules: dict[str, PeftModule], emit: Emitter) -> None:
    with_m = [n for n, m in modules.items() if m.magnitude is not None]
    lora = [n for n, m in modules.items() if m.a is not None or m.b is not None]
    use_dora = config.get("use_dora") is True
    if with_m and not use_dora:
        fix = Fix(SAFE, ((("use_dora",), True),), "set use_dora to true")
        emit(
            "AG710",
            f"{len(with_m)} module(s) carry lora_magnitude_vector but use_dora is {config.get('use_dora', 'absent')!r}: "
            "PEFT would drop the magnitudes silently",
            ("use_dora",) if "use_dora" in config else None,
            fix,
        )
    if use_dora:
        missing = [n for n in lora if modules[n].magnitude is None]
        if missing:
            emit(
                "AG711",
                f"use_dora is true but {len(missing)} module(s) have no lora_magnitude_vector: {names(missing)}",
                ("use_dora",),
            )
    for name in sorted(with_m):
        module = modules[name]
        if module.b is None or module.a is None:
            continue
        out = module.b[0]
        expected = (out,) if len(module.a) == 2 else (1, out) + (1,) * (len(module.a) - 2)
        if module.magnitude != expected:
            emit("AG712", f"`{name}`: lora_magnitude_vector is {module.magnitude}, PEFT builds {expected} for this module")


def _modules_to_save_rules(config: dict[str, Any], tensors: PeftTensors, base: dict[str, Any] | None, emit: Emitter) -> None:
    saved = config.get("modules_to_save")
    if not isinstance(saved, list):
        return
    present = {name.rpartition(".")[0] for name in tensors.plain}
    entries = [m for m in saved if isinstance(m, str)]
    # A classification task lists both head names PEFT knows; a model has one of them.
    if {"classifier", "score"} <= set(entries) and (_is_saved("classifier", present) or _is_saved("score", present)):
        entries = [m for m in entries if m not in ("classifier", "score")]
    missing = [m for m in entries if not _is_saved(m, present)]
    if missing:
        emit(
            "AG713",
            f"modules_to_save lists {names(missing)} but the file has no tensor for it (PEFT fails with a bare "
            f"KeyError on `{PREFIX}<module>.weight`)",
            ("modules_to_save",),
        )
    vocab = _base_int(base, "vocab_size")
    if vocab is None:
        return
    for name, shape in sorted(tensors.plain.items()):
        module, _, leaf = name.rpartition(".")
        if leaf != "weight" or len(shape) != 2 or not any(module == m or module.endswith("." + m) for m in entries):
            continue
        if module.rpartition(".")[2] in ("lm_head", "embed_tokens", "wte", "embed_in", "tok_embeddings") and shape[0] != vocab:
            emit(
                "AG714",
                f"`{name}` has {shape[0]} rows but the base model's vocab_size is {vocab}: PEFT refuses it (size mismatch) "
                "unless the base is resized first",
                ("modules_to_save",),
            )


def _is_saved(module: str, present: set[str]) -> bool:
    return any(p == module or p.endswith("." + module) for p in present)


def _base_int(base: dict[str, Any] | None, key: str) -> int | None:
    if base is None:
        return None
    for table in (base.get("text_config"), base):
        if isinstance(table, dict) and is_int(table.get(key)):
            return table[key]
    return None


def _widths(modules: dict[str, PeftModule]) -> list[ModuleWidths]:
    """(module, in, out) of each 2-D pair, in PEFT's orientation: A (r, in), B (out, r)."""
    out = []
    for name, m in modules.items():
        if m.a is not None and m.b is not None and len(m.a) == 2 and len(m.b) == 2 and m.rank is not None:
            out.append(ModuleWidths(name, m.a[1], m.b[0], m.embedding))
    return out
