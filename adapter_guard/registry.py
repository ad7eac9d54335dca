"""The one rule registry.

Every finding adapter-guard can emit has a stable code and a kebab-case name
here. The CLI's ``--list-rules`` / ``--explain``, the README rule table, SARIF
rule metadata and the PR comment links are all generated from this table.

Codes are grouped by hundreds, so ``--select AG1`` picks a whole family:

- AG0xx  the config file itself (JSON, types, values)
- AG1xx  the adapter weights file and its tensors
- AG2xx  ``lora_parameters`` (rank, scale, dropout)
- AG3xx  ``num_layers`` and ``fine_tune_type``
- AG4xx  topology (``keys``, module paths) and top-level mirrors
- AG5xx  the MLX reload smoke test (``--smoke``)
- AG6xx  the gpt-oss attention regression (``--gpt-oss``)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

ERROR = "error"
WARNING = "warning"
#: Informational: reported, but never fails the run on its own.
INFO = "info"

DOCS_URL = "https://github.com/adapter-guard/adapter-guard/blob/main/docs/rules.md"


class Applicability(str, Enum):
    """How sure a fix is, as in ruff: which flag applies it."""

    #: Applied by ``--fix``: the files prove the value.
    SAFE = "safe"
    #: Applied only by ``--unsafe-fixes``: it replaces an explicit value or relies on a convention.
    UNSAFE = "unsafe"
    #: Shown in the diff and the report, never applied.
    DISPLAY_ONLY = "display-only"

    def __str__(self) -> str:
        return self.value


class Availability(str, Enum):
    """Whether a rule's findings carry a fix."""

    ALWAYS = "always"
    #: Only when the files prove the value; otherwise the finding says what is missing.
    SOMETIMES = "sometimes"
    NEVER = "never"

    def __str__(self) -> str:
        return self.value


SAFE = Applicability.SAFE
UNSAFE = Applicability.UNSAFE
DISPLAY_ONLY = Applicability.DISPLAY_ONLY


@dataclass(frozen=True)
class Fixability:
    """What a rule declares about its fixes: how often one comes, and how sure each may be.

    tests/test_fix_declarations.py runs the fixture corpus and checks every emitted fix against it.
    """

    availability: Availability
    applicabilities: frozenset[Applicability] = frozenset()

    def __post_init__(self) -> None:
        if (self.availability is Availability.NEVER) != (not self.applicabilities):
            raise ValueError(f"a fix that is {self.availability} cannot have applicabilities {set(self.applicabilities)}")

    def allows(self, applicability: Applicability) -> bool:
        return applicability in self.applicabilities

    @property
    def ordered(self) -> tuple[Applicability, ...]:
        """The applicabilities in declaration order (safe, unsafe, display-only)."""
        return tuple(a for a in Applicability if a in self.applicabilities)

    @property
    def label(self) -> str:
        """A short label for tables: "safe", "unsafe", "safe or unsafe, when proven", ""."""
        if self.availability is Availability.NEVER:
            return ""
        kinds = " or ".join(a.value for a in self.ordered)
        return kinds if self.availability is Availability.ALWAYS else f"{kinds}, when proven"

    @property
    def sentence(self) -> str:
        """How a user gets the fix, for --explain and SARIF help."""
        if self.availability is Availability.NEVER:
            return "Not fixable."
        ways = []
        if SAFE in self.applicabilities:
            ways.append("a safe fix (`--fix`)")
        if UNSAFE in self.applicabilities:
            ways.append("an unsafe fix (`--unsafe-fixes`)")
        if DISPLAY_ONLY in self.applicabilities:
            ways.append("a suggested edit, shown and never applied")
        what = " or ".join(ways)
        if self.availability is Availability.ALWAYS:
            return f"Always has {what}."
        return f"Has {what} when the files prove the value."


def fixability(availability: Availability, *applicabilities: Applicability) -> Fixability:
    return Fixability(availability, frozenset(applicabilities))


NOT_FIXABLE = Fixability(Availability.NEVER)
ALWAYS_SAFE = fixability(Availability.ALWAYS, SAFE)
ALWAYS_UNSAFE = fixability(Availability.ALWAYS, UNSAFE)
SOMETIMES_SAFE = fixability(Availability.SOMETIMES, SAFE)


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: str
    summary: str
    explanation: str
    fix: Fixability = NOT_FIXABLE

    @property
    def url(self) -> str:
        return f"{DOCS_URL}#{self.code.lower()}-{self.name}"


def _rules(*rules: Rule) -> dict[str, Rule]:
    table = {r.code: r for r in rules}
    assert len(table) == len(rules), "duplicate rule code"
    assert len({r.name for r in rules}) == len(rules), "duplicate rule name"
    return table


RULES: dict[str, Rule] = _rules(
    # -- AG0xx: the config file ------------------------------------------------
    Rule(
        "AG001", "invalid-json", ERROR,
        "adapter_config.json is not valid JSON",
        "The file could not be parsed as JSON (syntax error, empty file, "
        "non-UTF-8 bytes, a byte-order mark, or nesting too deep). mlx-lm's "
        "`json.load` fails on it, so nothing else is checked.",
    ),
    Rule(
        "AG002", "duplicate-key", ERROR,
        "an object in adapter_config.json repeats a key",
        "JSON parsers disagree on which duplicate wins; Python keeps the last "
        "one silently. Remove the duplicate so every consumer reads the same value.",
    ),
    Rule(
        "AG003", "config-not-object", ERROR,
        "the top level of adapter_config.json is not an object",
        "mlx-lm builds a namespace from the top-level object; an array, "
        "number or string cannot be loaded.",
    ),
    Rule(
        "AG004", "invalid-value", ERROR,
        "a known field has the wrong type or an out-of-range value",
        "rank must be a positive integer, scale a finite number, dropout a "
        "number in [0, 1), num_layers an integer, lora_parameters an object "
        "(or null for full fine-tuning), keys a list of strings. NaN and "
        "Infinity literals are not JSON and are reported here too.",
    ),
    Rule(
        "AG005", "unreadable-config", ERROR,
        "adapter_config.json cannot be read",
        "The path is a directory, a dangling link, or not readable by this "
        "user. Nothing else is checked.",
    ),
    Rule(
        "AG006", "symlink-outside-repository", WARNING,
        "adapter_config.json is a symbolic link that leaves the repository",
        "adapter-guard reads through the link but never writes through it: "
        "a fix would modify a file outside the tree you asked it to check.",
    ),
    # -- AG1xx: weights ----------------------------------------------------------
    Rule(
        "AG101", "missing-weights", ERROR,
        "adapters.safetensors is missing next to adapter_config.json",
        "mlx-lm loads `adapters.safetensors` from the adapter directory. "
        "Without it the adapter cannot be reloaded and no field can be inferred.",
    ),
    Rule(
        "AG102", "unreadable-weights", ERROR,
        "adapters.safetensors is unreadable, truncated or has a bad header",
        "The safetensors header is read (never the tensor data) and validated: "
        "8-byte length, a JSON object under 100 MB, known dtypes, non-negative "
        "shapes, and data offsets that fit the file without overlapping.",
    ),
    Rule(
        "AG103", "incompatible-tensor", ERROR,
        "a tensor is not a LoRA/DoRA adapter parameter",
        "Since mlx-lm #1727, every tensor in an adapter file must be a model "
        "parameter whose last name part is `lora_a`, `lora_b` or `m`; anything "
        "else makes `load_adapters` raise `ValueError: ... contains incompatible "
        "tensors`. PEFT-style names (`lora_A.weight`) land here too.",
    ),
    Rule(
        "AG104", "unpaired-lora-tensor", ERROR,
        "a module has lora_a without lora_b, or the reverse",
        "A LoRA module needs both factors. A lone factor is a partial save; "
        "its module's rank cannot be known.",
    ),
    Rule(
        "AG105", "contradicted-rank", ERROR,
        "lora_a and lora_b disagree on the rank axis",
        "For every mlx-lm layout the rank sits on a known axis of each factor "
        "(see the format reference). When the two disagree, no rank is recorded "
        "for the module; adapter-guard never falls back to another axis.",
    ),
    Rule(
        "AG106", "mixed-ranks", ERROR,
        "modules have different ranks",
        "mlx-lm applies one `lora_parameters.rank` to every module, so an "
        "adapter whose modules differ in rank cannot be reloaded as saved.",
    ),
    Rule(
        "AG107", "unsafe-weights-format", WARNING,
        "pickle-based weights sit next to the adapter",
        "`.bin`, `.pt`, `.pth`, `.pkl`, `.ckpt` and `.npz` files can run code "
        "or hold object arrays when loaded. adapter-guard never loads them; "
        "publish safetensors instead.",
    ),
    Rule(
        "AG110", "lfs-pointer-not-fetched", WARNING,
        "the weights file is a Git LFS pointer whose header was not fetched",
        "A checkout without LFS objects (`actions/checkout` by default, "
        "`GIT_LFS_SKIP_SMUDGE=1`) holds a small pointer file in place of the "
        "weights. adapter-guard reads only the safetensors header of the object "
        "from the LFS server (on by default in GitHub Actions, `--lfs-headers` "
        "elsewhere); when that is off or fails, this warning says why, and the "
        "config checks that need no tensors still run. Fetch the weights with "
        "`git lfs pull --include=PATH`, or see docs/lfs.md.",
    ),
    # -- AG2xx: lora_parameters ------------------------------------------------
    Rule(
        "AG201", "missing-lora-parameters", ERROR,
        "lora_parameters is missing",
        "`load_adapters` reads `config.lora_parameters` for LoRA and DoRA. "
        "The fix adds an empty object; the rank, scale and dropout rules then "
        "fill what the files prove.",
        fix=ALWAYS_SAFE,
    ),
    Rule(
        "AG202", "missing-rank", ERROR,
        "lora_parameters.rank is missing",
        "mlx-lm reads `lora_parameters[\"rank\"]`, so a missing key is a "
        "KeyError. The safe fix writes the rank read from the tensor shapes.",
        fix=SOMETIMES_SAFE,
    ),
    Rule(
        "AG203", "rank-mismatch", ERROR,
        "lora_parameters.rank differs from the rank in the tensors",
        "Stock mlx-lm would build modules of the configured rank and then "
        "refuse the tensors. `--unsafe-fixes` replaces the value with the "
        "inferred rank.",
        fix=ALWAYS_UNSAFE,
    ),
    Rule(
        "AG204", "missing-scale", ERROR,
        "lora_parameters.scale is missing",
        "scale is a plain attribute, not a tensor, so it cannot be inferred "
        "from the weights. A top-level `scale` mirror is copied (safe). If the "
        "config carries `alpha`/`lora_alpha` and a rank, `--unsafe-fixes` "
        "writes alpha / rank, the PEFT convention, which may not be what the "
        "trainer used. Otherwise set it by hand to the value used in training. "
        "adapter-guard never writes a default scale.",
        fix=fixability(Availability.SOMETIMES, SAFE, UNSAFE),
    ),
    Rule(
        "AG205", "missing-dropout", ERROR,
        "lora_parameters.dropout is missing",
        "mlx-lm requires the key. A top-level `dropout` mirror is copied; "
        "without one the fix writes 0.0, the one default adapter-guard allows, "
        "because dropout has no effect at inference.",
        fix=ALWAYS_SAFE,
    ),
    # -- AG3xx: num_layers, fine_tune_type ---------------------------------------
    Rule(
        "AG301", "missing-num-layers", ERROR,
        "num_layers is missing",
        "`load_adapters` dereferences `config.num_layers` (AttributeError "
        "without it). The fix writes -1 when the LoRA layers start at layer 0 "
        "or the keys are full module paths, or the suffix length when the base "
        "model's `num_hidden_layers` is known (a `config.json` beside the "
        "adapter, or `--base-model`). Otherwise it cannot be proven.",
        fix=SOMETIMES_SAFE,
    ),
    Rule(
        "AG302", "num-layers-too-small", ERROR,
        "num_layers does not reach every layer that has adapter tensors",
        "LoRA is applied to the last `num_layers` layers only; tensors in "
        "earlier layers are then not model parameters and the load fails.",
    ),
    Rule(
        "AG303", "non-suffix-layers", ERROR,
        "the adapter's layers are not a suffix of the model's layers",
        "`num_layers` can only express the last N layers. Adapters on other "
        "layer sets need explicit full module paths in `lora_parameters.keys`.",
    ),
    Rule(
        "AG304", "missing-fine-tune-type", WARNING,
        "fine_tune_type is missing",
        "mlx-lm defaults to `lora`. The fix writes `lora`, or `dora` when "
        "`m` tensors are present (a DoRA adapter read as LoRA fails to load).",
        fix=ALWAYS_SAFE,
    ),
    Rule(
        "AG305", "fine-tune-type-mismatch", ERROR,
        "fine_tune_type contradicts the tensors",
        "`dora` adapters carry an `m` magnitude vector per module and `lora` "
        "adapters do not.",
    ),
    # -- AG4xx: topology, mirrors ------------------------------------------------
    Rule(
        "AG401", "missing-keys", ERROR,
        "the default module set cannot reach the adapter's modules",
        "Without `lora_parameters.keys`, mlx-lm wraps only the linear and "
        "embedding modules inside the transformer layers. Modules outside them "
        "(e.g. `model.embed_tokens`, `lm_head`) need explicit keys. The safe "
        "fix writes keys inferred from the tensors: layer-relative names plus "
        "full paths for modules outside the layers. With `unsloth_mlx_lora_module_paths` "
        "(explicit topology) no keys are written: add them by hand.",
        fix=SOMETIMES_SAFE,
    ),
    Rule(
        "AG402", "keys-do-not-cover-tensors", ERROR,
        "explicit keys or module paths miss modules that have tensors",
        "Explicit topology is never rewritten, not even by `--unsafe-fixes`. "
        "Add the listed modules by hand, or remove the stray tensors.",
    ),
    Rule(
        "AG403", "mirror-mismatch", ERROR,
        "a top-level rank/scale/dropout mirror disagrees with lora_parameters",
        "Some consumers (mlx-vlm) read the top-level mirrors, mlx-lm reads "
        "`lora_parameters`. When they disagree the adapter behaves differently "
        "depending on who loads it.",
    ),
    # -- AG5xx: smoke test -------------------------------------------------------
    Rule(
        "AG501", "smoke-skipped", INFO,
        "smoke skipped: base model not available locally",
        "The reload test needs a base `config.json` from `--base-model`, or a "
        "local directory or cached snapshot named by `base_model_name_or_path` "
        "or `model`. adapter-guard never downloads. Informational, so not a "
        "failure, unless `--require-smoke` is given.",
    ),
    Rule(
        "AG502", "reload-failed", ERROR,
        "stock mlx-lm load_adapters failed",
        "The adapter does not reload with `mlx_lm.tuner.utils.load_adapters`.",
    ),
    Rule(
        "AG503", "tensor-not-bound", ERROR,
        "a tensor in the file is not bound to a model parameter after reload",
        "Every tensor must end up, with identical values, in a parameter of "
        "the reloaded model; otherwise it was dropped silently.",
    ),
    Rule(
        "AG504", "module-not-recreated", ERROR,
        "a module was not recreated as its LoRA class",
        "Switch (MoE) and embedding modules must come back as "
        "LoRASwitchLinear / LoRAEmbedding, not be skipped.",
    ),
    Rule(
        "AG505", "module-metadata-mismatch", ERROR,
        "a reloaded module's rank, scale or dropout differs from the config",
        "The reloaded module does not carry the configured metadata.",
    ),
    Rule(
        "AG506", "non-finite-output", ERROR,
        "the reloaded model produces NaN or Inf",
        "Outputs on a seeded probe input are not finite.",
    ),
    Rule(
        "AG507", "nondeterministic-eval", ERROR,
        "two eval-mode runs differ",
        "After reload and `model.eval()`, two runs on the same input must be "
        "identical; a difference means dropout (or another training-mode "
        "behaviour) is still active.",
    ),
    Rule(
        "AG508", "adapter-has-no-effect", WARNING,
        "the adapter does not change the model's output",
        "When every `lora_b` is zero this is an untrained adapter.",
    ),
    Rule(
        "AG509", "fingerprint-mismatch", ERROR,
        "a module's output delta differs from the recorded fingerprint",
        "The fingerprint recorded at save time is each LoRA module's output "
        "delta on a seeded probe. A wrong scale reloads without error but "
        "changes this delta; the message names the module and the factor.",
    ),
    Rule(
        "AG510", "module-missing-from-file", ERROR,
        "a module the config recreates has no tensors in the file",
        "Stock `load_adapters` wraps every module named by `keys` and "
        "`num_layers`, then loads the file without `strict`. A wrapped module "
        "with no tensors keeps its initial values (`lora_b` = 0) and silently "
        "adds nothing: the file is missing a module, or the config names too many.",
    ),
    # -- AG6xx: gpt-oss --------------------------------------------------------
    Rule(
        "AG601", "gpt-oss-cache-drift", ERROR,
        "cached decoding drifts from a full recompute across the sliding window",
        "Greedy decoding with mlx-lm's prompt cache must match a recompute "
        "without cache at every step, across the sliding-window boundary: max "
        "absolute logit difference within 1e-4 (float32; 1e-2 float16, 5e-2 "
        "bfloat16), and identical greedy tokens, except where the recompute's "
        "top two logits are closer than the tolerance (a tie rounding may flip).",
    ),
    Rule(
        "AG602", "gpt-oss-attention-error", ERROR,
        "gpt-oss attention raised while crossing the sliding window",
        "The upstream bug: the cache hands a full-attention layer more key "
        "positions than the mask covers and `attn_weights += mask` fails.",
    ),
    Rule(
        "AG603", "gpt-oss-skipped", WARNING,
        "gpt-oss regression skipped",
        "The regression could not run: the adapter does not apply to its "
        "gpt-oss base, the base has no weights and is too large to build with "
        "random weights (over 100M parameters), or mlx/mlx-lm is not installed.",
    ),
)


def get_rule(code: str) -> Rule:
    return RULES[code]


def matches(code: str, patterns: Iterable[str]) -> bool:
    """Whether ``code`` is selected by any of the code prefixes (``AG2``, ``ALL``)."""
    return any(p == "ALL" or code.startswith(p) for p in patterns)


def enabled_codes(select: Iterable[str] | None, ignore: Iterable[str] | None) -> frozenset[str]:
    """Resolve ``--select`` / ``--ignore`` prefixes to the set of enabled codes.

    As in ruff, the more specific prefix wins: ``--select AG2 --ignore AG204``
    drops AG204 only, ``--ignore AG2 --select AG204`` keeps AG204 only.
    """
    select = [s.upper() for s in (select or ["ALL"])]
    ignore = [s.upper() for s in (ignore or [])]
    enabled = set()
    for code in RULES:
        best_sel = max((len(p) for p in select if matches(code, [p])), default=-1)
        best_ign = max((len(p) for p in ignore if matches(code, [p])), default=-1)
        if best_sel >= 0 and best_sel > best_ign:
            enabled.add(code)
    return frozenset(enabled)


def unknown_selectors(patterns: Iterable[str]) -> list[str]:
    return [p for p in patterns if p.upper() != "ALL" and not any(c.startswith(p.upper()) for c in RULES)]
