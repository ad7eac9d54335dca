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
- AG7xx  Hugging Face PEFT LoRA adapters, in PEFT's words (``r``, ``target_modules``)
- AG8xx  mlx-vlm, mlx-lm before 0.19, ``adapters.npz`` and converted adapters
- AG9xx  runtime targets (``--target``): AG90x vLLM, AG91x llama.cpp, AG92x PEFT versions,
         AG93x mlx-lm versions, AG94x mlx-vlm versions; the tables are in ``adapter_guard.targets``

AG1xx-AG4xx speak mlx-lm's words and run on mlx-lm adapters (unsloth's MLX
adapters included); each other format gets its own family, so a fix never
writes one format's keys into another's config.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from .record import Record

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


class Fixability(Record):
    """What a rule declares about its fixes: how often one comes, and how sure each may be.

    tests/test_fix_declarations.py runs the fixture corpus and checks every emitted fix against it.
    """

    __slots__ = ("availability", "applicabilities")

    def __init__(self, availability: Availability, applicabilities: frozenset[Applicability] = frozenset()) -> None:
        self.availability = availability
        self.applicabilities = applicabilities
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


class Rule(Record):
    __slots__ = ("code", "name", "severity", "summary", "explanation", "fix")

    def __init__(self, code: str, name: str, severity: str, summary: str, explanation: str,
                 fix: Fixability = NOT_FIXABLE) -> None:
        self.code = code
        self.name = name
        self.severity = severity
        self.summary = summary
        self.explanation = explanation
        self.fix = fix

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
    Rule(
        "AG007", "weights-without-config", ERROR,
        "adapter weights have no adapter_config.json beside them",
        "Every current loader needs the config: mlx-lm's `load_adapters` and mlx-vlm read "
        "`adapter_config.json` next to `adapters.safetensors`, and `PeftModel.from_pretrained` "
        "reads it next to `adapter_model.safetensors`. Commit the config the trainer wrote. "
        "(A lone `adapters.npz` is the mlx-examples format and gets AG821 instead.)",
    ),
    Rule(
        "AG008", "unknown-format", INFO,
        "the adapter's format cannot be decided",
        "adapter-guard decides the format from the weights file name, the tensor names and the "
        "config keys before it judges anything. When they contradict each other (both "
        "`adapter_model.safetensors` and `adapters.safetensors`, for instance: unsloth refuses "
        "such a folder too), the folder gets this one finding, saying what was seen and what "
        "would decide it, and is never fixed.",
    ),
    Rule(
        "AG009", "other-peft-method", INFO,
        "a PEFT adapter of another method than LoRA",
        "`peft_type` names a PEFT method other than LoRA (AdaLoRA, LoHa, LoKr, IA3, ...). "
        "Those share PEFT's file names, and AdaLoRA even the `lora_A`/`lora_B` names, but "
        "not LoRA's rules, so no LoRA check runs on them.",
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
        "8-byte length, a JSON object of at most 32 MiB, known dtypes, non-negative "
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
        "AG108", "base-width-mismatch", ERROR,
        "a module's width does not match the base model's config.json",
        "When a base `config.json` is known (see the README's Configuration section for where it is looked up), the "
        "input and output widths the tensors imply for the attention and MLP projections, "
        "the embedding and the output head are compared with `hidden_size` and `vocab_size`. "
        "A difference means the adapter was trained for another base: every loader refuses "
        "it (PEFT and mlx-lm) or loads it into the wrong shapes (mlx-vlm). Checked for every "
        "format, in that format's orientation.",
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
        "Stock mlx-lm builds modules of the configured rank and then refuses "
        "the tensors (since its strict load, #1727, such a file never loads), "
        "so the tensors prove the only loadable value. When every module has "
        "one rank and it is below each module's larger width, `--fix` writes "
        "it, in `lora_parameters` and in a top-level `rank` mirror alike. A "
        "rank that reaches both widths of a module is more than full rank, "
        "which is what a transposed layout reads as: then only "
        "`--unsafe-fixes` writes it. Modules that disagree among themselves "
        "are AG105/AG106, with no fix.",
        fix=fixability(Availability.ALWAYS, SAFE, UNSAFE),
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
        "model's `num_hidden_layers` is known: from `--base-model`, `base-model` "
        "in pyproject.toml, a `config.json` beside the adapter, or the adapter "
        "config's `model` / `base_model_name_or_path` as a directory inside the "
        "repository or a snapshot in the local Hugging Face cache "
        "(`--fetch-base-config` fetches it). Otherwise it cannot be proven.",
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
    Rule(
        "AG310", "base-config-unusable", WARNING,
        "the base model config named by --base-model or base-model cannot be used",
        "`--base-model` or `base-model` in `[tool.adapter-guard]` points at a "
        "`config.json` that is unreadable, not a JSON object, or neither a "
        "`model_type` nor `num_hidden_layers`. An explicit base is never replaced by a guess, so "
        "the findings that need a base model go without one.",
    ),
    Rule(
        "AG311", "base-config-fetch-failed", WARNING,
        "--fetch-base-config could not fetch the base model's config.json",
        "With `--fetch-base-config` (or `fetch-base-config = true`), a base "
        "model named by a Hub id that is not in the local Hugging Face cache has "
        "its `config.json`, and nothing else, fetched from the Hub (`HF_ENDPOINT`, "
        "`HF_TOKEN` and `HF_HUB_OFFLINE` are honoured). The message says why the "
        "fetch failed: offline mode, no network, a gated or missing repository, "
        "or huggingface_hub not installed (the `hub` extra).",
    ),
    # -- AG4xx: topology, mirrors ------------------------------------------------
    Rule(
        "AG401", "missing-keys", ERROR,
        "the default module set cannot reach the adapter's modules",
        "Without `lora_parameters.keys`, mlx-lm wraps only the linear and "
        "embedding modules inside the transformer layers. Modules outside them "
        "(e.g. `model.embed_tokens`, `lm_head`) need explicit keys. And when "
        "the base model's weights (their safetensors headers, never the data) "
        "show Linear modules in the layers that have no adapter tensors, the "
        "default set would wrap those too, with nothing to load into them. "
        "The safe fix writes keys inferred from the tensors: layer-relative "
        "names plus full paths for modules outside the layers. With "
        "`unsloth_mlx_lora_module_paths` (explicit topology) no keys are "
        "written: add them by hand.",
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
        "depending on who loads it. A rank mirror is fixed when the tensors "
        "prove `lora_parameters.rank`; every fix that writes a field of "
        "`lora_parameters` writes its mirror in the same edit.",
        fix=SOMETIMES_SAFE,
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
    Rule(
        "AG511", "base-runs-code", WARNING,
        "smoke skipped: the base model asks to run code it ships",
        "The base's `config.json` names code to import (`model_file`, which "
        "mlx-lm's `load_model` runs when trusted, or transformers' `auto_map`). "
        "adapter-guard never runs code that came with the checked repository, "
        "so the base is not loaded and the reload is not tested. Point "
        "`--base-model` at a base you trust that needs no custom code.",
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
    Rule(
        "AG604", "gpt-oss-base-runs-code", WARNING,
        "gpt-oss regression skipped: the base model asks to run code it ships",
        "As AG511, for `--gpt-oss`: a base whose `config.json` has `model_file` "
        "or `auto_map` is never loaded, so the regression did not run.",
    ),
    # -- AG7xx: PEFT LoRA ------------------------------------------------------
    Rule(
        "AG701", "peft-missing-weights", ERROR,
        "adapter_model.safetensors is missing next to a PEFT adapter_config.json",
        "`PeftModel.from_pretrained` loads `adapter_model.safetensors` (or, when there is "
        "none, the pickled `adapter_model.bin`). Without either, a local folder is taken for a "
        "Hub repository id and loading fails. An `adapters.safetensors` beside it is MLX's "
        "name, which PEFT never reads.",
    ),
    Rule(
        "AG702", "peft-unreadable-weights", ERROR,
        "adapter_model.safetensors is empty, unreadable or holds no tensors",
        "A zero-byte or truncated file fails in safetensors (`header too small`); a valid file "
        "with no tensors loads with every adapter key missing, so the adapter does nothing.",
    ),
    Rule(
        "AG703", "peft-pickle-weights", WARNING,
        "the PEFT weights are only in the pickled adapter_model.bin",
        "`adapter_model.bin` is a torch pickle: loading it can run code. PEFT falls back to it "
        "only when there is no `adapter_model.safetensors`. Convert it once, in an environment "
        "you trust: `save_pretrained(..., safe_serialization=True)`, or load the state dict with "
        "`torch.load(path, weights_only=True)` and write it with `safetensors.torch.save_file` "
        "(metadata `{\"format\": \"pt\"}`). adapter-guard never loads it, so its shapes are not checked.",
    ),
    Rule(
        "AG704", "peft-type-invalid", ERROR,
        "peft_type is missing or not spelt \"LORA\"",
        "`PeftModel.from_pretrained` looks the method up by `peft_type`: a missing key is "
        "`KeyError: 'peft_type'`, and `\"lora\"` is `KeyError: 'lora'`. It is the one key a "
        "PEFT config cannot do without.",
    ),
    Rule(
        "AG705", "peft-rank-mismatch", ERROR,
        "a module's lora_A/lora_B rank differs from r (or its rank_pattern entry)",
        "PEFT builds each module with the rank `rank_pattern` gives it (the first key, in "
        "order, that matches the module at a `.` boundary), or `r`; a file of another rank is a "
        "size-mismatch `RuntimeError`. When every module agrees and there is no `rank_pattern`, "
        "the safe fix sets `r` to that rank. lora_A is (r, in) and lora_B (out, r); factors that "
        "disagree (a transposed lora_B, say) are reported here and never fixed.",
        fix=SOMETIMES_SAFE,
    ),
    Rule(
        "AG706", "peft-mixed-ranks", ERROR,
        "modules have different ranks and rank_pattern does not give them",
        "Without a `rank_pattern` entry PEFT builds every module with `r`, so a module saved "
        "with another rank is a size-mismatch `RuntimeError`. When the config has no "
        "`rank_pattern` yet, the safe fix writes one entry per differing module, its full "
        "module path escaped as a regex, which every PEFT version matches.",
        fix=SOMETIMES_SAFE,
    ),
    Rule(
        "AG707", "peft-unmatched-pattern-key", WARNING,
        "a rank_pattern or alpha_pattern key matches no module that has tensors",
        "Keys are regexes matched at the end of a module name, from a `.` boundary "
        "(`(.*\\.)?(KEY)$`): `\"proj\"` matches nothing, `\"q_proj\"` and `\"layers\\.1\\..*\"` "
        "do. An unmatched key is ignored (peft 0.21 warns, older versions say nothing), so the "
        "rank or alpha it meant to set is not used.",
    ),
    Rule(
        "AG708", "peft-tensors-ignored", ERROR,
        "tensors in adapter_model.safetensors belong to modules PEFT will not adapt",
        "PEFT adapts a module when `target_modules` matches it (a list: exact name or `.`-suffix; "
        "a string: a full-name regex match), it is not in `exclude_modules` or "
        "`modules_to_save`, and, for a suffix match, its layer is in `layers_to_transform` "
        "(found after `layers_pattern`). Tensors of any other module are dropped on load "
        "without a word, so the adapter silently does less than it was trained to.",
    ),
    Rule(
        "AG709", "peft-target-without-tensors", WARNING,
        "a target_modules entry matches no module that has tensors",
        "PEFT adapts what the entry matches in the base model and finds no weights for it: "
        "it warns about missing adapter keys and the module gets a no-op adapter (or, when no "
        "entry matches anything in the base, `NoMatchingPeftModuleError`). Usually the config "
        "names more than was trained. Reported only when the base very likely has the module: "
        "the entry is filtered out by `layers_to_transform`, or is a sibling of a module with "
        "tensors (`k_proj` beside `q_proj`). A generic list's entry for another architecture "
        "(`query_key_value` on Llama) matches nothing and PEFT says nothing, so neither does this.",
    ),
    Rule(
        "AG710", "peft-dora-ignored", ERROR,
        "lora_magnitude_vector tensors are present but use_dora is not true",
        "PEFT builds plain LoRA modules and drops the DoRA magnitudes without a word, so the "
        "output differs from the trained adapter. The safe fix sets `use_dora: true`.",
        fix=ALWAYS_SAFE,
    ),
    Rule(
        "AG711", "peft-dora-magnitudes-missing", ERROR,
        "use_dora is true but modules have no lora_magnitude_vector",
        "PEFT warns about missing adapter keys and re-derives the magnitudes from the base "
        "weights, which changes the output. Either the file lost its magnitudes or the adapter "
        "was not trained with DoRA.",
    ),
    Rule(
        "AG712", "peft-tensor-shape", ERROR,
        "a PEFT tensor's shape is not what PEFT builds for its module",
        "DoRA magnitudes are (out,) for Linear, (embedding_dim,) for Embedding and "
        "(1, out, 1, 1) for Conv2d; embedding LoRA is `lora_embedding_A` (r, num_embeddings) and "
        "`lora_embedding_B` (embedding_dim, r). Any other shape is a size-mismatch `RuntimeError`.",
    ),
    Rule(
        "AG713", "peft-modules-to-save-missing", ERROR,
        "a modules_to_save module has no tensor in the file",
        "`modules_to_save` copies are saved under the module's plain name "
        "(`base_model.model.lm_head.weight`); when it is missing, loading fails with a bare "
        "`KeyError` naming that key.",
    ),
    Rule(
        "AG714", "peft-vocab-mismatch", ERROR,
        "a saved embedding or output head has another vocabulary size than the base model",
        "With a base `config.json`, the rows of a saved `lm_head`/`embed_tokens` copy are "
        "compared with `vocab_size`. A resized vocabulary is a size-mismatch `RuntimeError` "
        "until the base model is resized the same way before loading.",
    ),
    Rule(
        "AG715", "peft-unpaired-factor", ERROR,
        "a module has lora_A without lora_B, or the reverse",
        "PEFT warns about the missing key and keeps that factor's initial values while the "
        "other loads, so the module's output is wrong rather than unchanged.",
    ),
    Rule(
        "AG716", "peft-invalid-pattern", ERROR,
        "a pattern in the PEFT config is not a valid regular expression",
        "`target_modules` and `exclude_modules` strings, `rank_pattern`/`alpha_pattern` keys, "
        "`modules_to_save` entries and `layers_pattern` are Python regexes to PEFT, compiled "
        "inside its own wrapping (`(.*\\.)?(KEY)$` for a pattern key). One that does not "
        "compile makes `PeftModel.from_pretrained` raise `re.error`. The checks that depend on "
        "the pattern are skipped.",
    ),
    Rule(
        "AG717", "peft-pattern-too-slow", ERROR,
        "matching the PEFT config's patterns against its modules did not finish in time",
        "Python's `re` backtracks: a pattern such as `(a+)+$` or `(.*a){25}` takes "
        "exponential time on a long module name. adapter-guard stops matching after "
        "`peft.PATTERN_SECONDS` (2 s; real configs take milliseconds) and skips the checks "
        "that depend on the patterns. PEFT matches the same patterns against every module "
        "of the base model when it loads, so loading stalls too: rewrite the pattern without "
        "nested or repeated open-ended repetition, or list the module names.",
    ),
    # -- AG8xx: mlx-vlm, older mlx-lm, npz, conversions ------------------------
    Rule(
        "AG801", "mlx-vlm-rank-mismatch", WARNING,
        "the mlx-vlm config's rank differs from the rank in the tensors",
        "mlx-vlm loads with `strict=False`, which skips the shape check: the file's arrays "
        "replace the modules' factors, so mlx-vlm itself still reproduces the trained output, "
        "but the config describes another adapter to anyone else who reads it (a converter, "
        "`lora_parameters.rank` in a fuse). Read from `lora_parameters.rank` (mlx-vlm 0.6+) or "
        "the top-level `rank` (mlx-vlm 0.5 and older); never rewritten.",
    ),
    Rule(
        "AG802", "mlx-vlm-keys-do-not-cover-tensors", ERROR,
        "lora_parameters.keys misses modules that have tensors",
        "mlx-vlm wraps exactly the modules named by `keys` (from the model root, or relative to "
        "`language_model`). Tensors of other modules bind to nothing and are dropped silently. "
        "Explicit keys are never rewritten.",
    ),
    Rule(
        "AG803", "mlx-vlm-key-without-tensors", WARNING,
        "a lora_parameters.keys entry has no tensors in the file",
        "mlx-vlm wraps the module and finds nothing to load, so it keeps its initial values "
        "(`lora_b` = 0) and adds nothing.",
    ),
    Rule(
        "AG804", "mlx-vlm-legacy-default", WARNING,
        "the old mlx-vlm config lacks alpha or dropout",
        "mlx-vlm 0.5 and older wrote exactly `rank`, `alpha` and `dropout`. Current mlx-vlm "
        "still reads that schema and uses 0.1 for a missing `alpha` or `dropout`, which is "
        "rarely the value trained with. mlx-lm keys are never added to this schema.",
    ),
    Rule(
        "AG805", "mlx-vlm-fine-tune-type-mismatch", ERROR,
        "fine_tune_type contradicts the tensors (mlx-vlm)",
        "mlx-vlm builds DoRA modules only for `fine_tune_type: dora`; the `m` tensors of a "
        "DoRA adapter saved as `lora` bind to nothing and are dropped silently, and a `dora` "
        "config without them keeps freshly computed magnitudes.",
    ),
    Rule(
        "AG806", "mlx-vlm-missing-lora-parameters", ERROR,
        "an mlx-vlm config has no lora_parameters",
        "mlx-vlm 0.6+ reads rank, scale, dropout and keys from `lora_parameters`; without it "
        "(and without the old schema's top-level `rank`) the loader raises `ValueError: The "
        "adapter does not have lora params in the config`. The scale cannot be read from the "
        "tensors, so this is not fixed: restore the config the trainer wrote.",
    ),
    Rule(
        "AG811", "mlx-lm-lora-layers", ERROR,
        "the config has mlx-lm's old lora_layers but no num_layers",
        "mlx-lm 0.19 renamed `lora_layers` to `num_layers` (and `use_dora` to "
        "`fine_tune_type`); current mlx-lm raises AttributeError on a config with only the old "
        "name. The safe fix writes `num_layers` with the same value when the tensors fit in "
        "that many final layers, and keeps `lora_layers` for older mlx-lm.",
        fix=SOMETIMES_SAFE,
    ),
    Rule(
        "AG821", "npz-adapter", WARNING,
        "adapters.npz is the mlx-examples format, which current mlx-lm does not read",
        "mlx-examples `lora/` and mlx-lm before 0.6 saved `adapters.npz` with no config (rank 8; "
        "scale 20.0 in mlx-examples, 10.0 in mlx-lm). Current mlx-lm loads only "
        "`adapters.safetensors` with an `adapter_config.json`. Convert, in an environment you "
        "trust (an npz can hold pickled objects): "
        "`mx.save_safetensors(\"adapters.safetensors\", dict(mx.load(\"adapters.npz\")))`, then "
        "write a config with `fine_tune_type`, `num_layers` and `lora_parameters` "
        "(`rank`, `scale`, `dropout`) matching the training run.",
    ),
    Rule(
        "AG831", "transposed-factors", ERROR,
        "an MLX adapter's factors are in PEFT orientation (not transposed on conversion)",
        "MLX stores `lora_a` (in, r) and `lora_b` (r, out); PEFT stores lora_A (r, in) and "
        "lora_B (out, r). A conversion that forgot to transpose gives a pair whose 'rank' is a "
        "module width: at least the smaller of the module's widths, or, with a base config, "
        "widths the model does not have. No rank is ever inferred from such a pair; transpose "
        "both factors and re-check.",
    ),
    # -- AG90x: the vLLM target (adapter_guard/targets/vllm.py) ------------------------
    Rule(
        "AG900", "vllm-wrong-format", ERROR,
        "vLLM loads PEFT LoRA adapters only",
        "vLLM's LoRA loader reads `adapter_config.json` through PEFTHelper (`r`, `lora_alpha` and "
        "`target_modules` required) and `adapter_model.safetensors` (or `.bin`/`.pt`); it raises "
        "\"... doesn't contain tensors\" on anything else. An mlx-lm, mlx-vlm or `adapters.npz` "
        "adapter must be converted to PEFT first (factors transposed, keys under `base_model.model.`).",
    ),
    Rule(
        "AG901", "vllm-max-lora-rank", ERROR,
        "the adapter's rank exceeds vLLM's max_lora_rank",
        "vLLM allocates its LoRA buffers at `--max-lora-rank` and refuses an adapter whose `r` (from "
        "0.32, also any `rank_pattern` rank) is larger: \"LoRA rank 128 is greater than max_lora_rank "
        "64.\" With `--target vllm:max_lora_rank=N` the check uses N; without it, only a rank above the "
        "largest value `--max-lora-rank` accepts (256 before vLLM 0.8, 512 since) is an error, because "
        "no flag can load it.",
    ),
    Rule(
        "AG902", "vllm-rank-above-default", INFO,
        "the adapter's rank exceeds vLLM's default max_lora_rank (16)",
        "`vllm serve --enable-lora` without `--max-lora-rank` allows rank 16 and refuses a larger "
        "adapter. adapter-guard cannot see the serve command, so this is a note, never a failure: pass "
        "the flag when serving, and declare it with `--target vllm:max_lora_rank=N` to have the rank "
        "checked exactly (AG901).",
    ),
    Rule(
        "AG903", "vllm-dora", ERROR,
        "vLLM refuses DoRA adapters",
        "From 0.6.5 PEFTHelper refuses `use_dora: true` (\"vLLM does not yet support DoRA.\"); before "
        "that the weight-name parser refused the `lora_magnitude_vector` tensors. Merge the DoRA adapter "
        "into the base, or retrain without DoRA.",
    ),
    Rule(
        "AG904", "vllm-bias", ERROR,
        "vLLM refuses the adapter's biases (or needs --enable-lora-bias)",
        "PEFT's `bias: \"all\"`/`\"lora_only\"` saves trained base biases and `lora_bias: true` saves "
        "`lora_B.bias`. vLLM before 0.6.4 and from 0.11.1 refuses them (\"Adapter bias is not "
        "supported.\", \"vLLM does not support LoRA bias (lora_bias).\" from 0.32, or the parser's "
        "\"unsupported LoRA weight\"); 0.6.4 to 0.11.0 load them only with `--enable-lora-bias`.",
    ),
    Rule(
        "AG905", "vllm-modules-to-save", ERROR,
        "vLLM refuses modules_to_save (full module weights)",
        "vLLM serves LoRA factors, not the full copies PEFT saves for `modules_to_save` (e.g. "
        "`lm_head`). From 0.6.5 PEFTHelper refuses any entry (\"vLLM only supports modules_to_save "
        "being None\"); from 0.31 a classification head (`classifier`, `score`) is accepted. Before "
        "0.6.5 the weight-name parser refused the saved weights.",
    ),
    Rule(
        "AG906", "vllm-unsupported-tensor", ERROR,
        "the weights file holds tensors vLLM's weight-name parser refuses",
        "vLLM hands every tensor name to `parse_fine_tuned_lora_name`, which knows only "
        "`lora_A.weight`, `lora_B.weight`, `lora_embedding_A` and `lora_embedding_B` and raises "
        "\"... is unsupported LoRA weight\" on the rest: trainable-token deltas, a resized "
        "`embed_tokens.weight`/`lm_head.weight`, and before 0.18 the full base embedding "
        "(`embed_tokens.base_layer.weight`) PEFT saves when the embedding is a LoRA target.",
    ),
    Rule(
        "AG907", "vllm-pattern-scale", ERROR,
        "vLLM before 0.32 ignores rank_pattern/alpha_pattern: wrong scale",
        "PEFT scales each module by its own `alpha_pattern`/`rank_pattern` values; vLLM before 0.32 "
        "computes one scale, `lora_alpha / r`, for every module, so the modules the patterns cover "
        "load with a different scale and the outputs change without an error. vLLM 0.32 reads both "
        "patterns with PEFT's matching rule.",
    ),
    Rule(
        "AG908", "vllm-rslora", ERROR,
        "vLLM before 0.7 does not apply the rsLoRA scale",
        "rsLoRA scales by `lora_alpha / sqrt(r)`. vLLM before 0.6.5 ignored `use_rslora` and used "
        "`lora_alpha / r` (a wrong scale, silently); 0.6.5 and 0.6.6 refuse the adapter (\"vLLM does "
        "not yet support RSLoRA.\"); from 0.7.0 the rsLoRA scale is applied.",
    ),
    Rule(
        "AG909", "vllm-unsupported-config", ERROR,
        "the config lacks a key vLLM requires, or uses a PEFT feature vLLM refuses",
        "PEFT fills in `r`, `lora_alpha` and `target_modules` when they are absent; vLLM requires them "
        "(\"Missing required configuration fields\"). From 0.32 vLLM also refuses inits that assume a "
        "modified base (PiSSA, OLoRA, CorDA, LoftQ), Activated LoRA, `layer_replication`, BD-LoRA "
        "and QALoRA.",
    ),
    # (end of AG90x)
    #
    # -- AG91x: the llama.cpp target (adapter_guard/targets/llama_cpp.py) --------------
    Rule(
        "AG910", "llama-cpp-not-peft", ERROR,
        "the llama.cpp converter reads only PEFT adapters",
        "`convert_lora_to_gguf.py` reads `adapter_config.json` and `adapter_model.safetensors` "
        "(else `adapter_model.bin`) in PEFT's layout. An mlx-lm, mlx-vlm or npz adapter is not "
        "read at all: convert it to PEFT's layout first, then to GGUF.",
    ),
    Rule(
        "AG911", "llama-cpp-rslora", ERROR,
        "an rsLoRA adapter converts with scale alpha/r: fold the sqrt(r) factor into lora_alpha",
        "The converter writes `lora_alpha` as the GGUF's `adapter.lora.alpha` and never reads "
        "`use_rslora`; llama.cpp scales each pair by alpha / rank. PEFT's rsLoRA scale is "
        "alpha / sqrt(r), so the GGUF adapter runs sqrt(r) times too weak. Before converting, set "
        "`lora_alpha` to lora_alpha * sqrt(r) and `use_rslora` to false: PEFT then scales "
        "the adapter exactly as before, and so does llama.cpp. With several ranks no single "
        "alpha fits.",
    ),
    Rule(
        "AG912", "llama-cpp-alpha-pattern", ERROR,
        "the llama.cpp converter ignores alpha_pattern",
        "The GGUF adapter holds one alpha, `lora_alpha`; llama.cpp divides it by each pair's "
        "own rank (read from the tensor), so `rank_pattern` is honoured but the modules "
        "`alpha_pattern` gives another alpha run at the wrong scale. Scale their lora_B by "
        "alpha / lora_alpha and drop `alpha_pattern`, or merge the adapter, before converting.",
    ),
    Rule(
        "AG913", "llama-cpp-full-weights", ERROR,
        "the llama.cpp converter stops on whole-module weights",
        "A tensor that is not a LoRA pair or a `base_layer.weight` copy (`modules_to_save` "
        "copies, a resized `embed_tokens`/`lm_head`, trainable-token deltas; before b4446 also "
        "norm vectors and `lora_embedding_A/B`) ends the conversion with \"Unexpected name ...: "
        "Not a lora_A or lora_B tensor\" (and \"Embeddings is present in the adapter\" for "
        "embeddings). Convert without them, or merge the adapter into the base and convert the "
        "merged model.",
    ),
    Rule(
        "AG914", "llama-cpp-dora", ERROR,
        "the llama.cpp converter stops on DoRA magnitude vectors",
        "`lora_magnitude_vector` is not a lora_A/lora_B tensor: the converter exits with "
        "\"Unexpected name\". llama.cpp has no DoRA; merge the adapter into the base and "
        "convert the merged model.",
    ),
    Rule(
        "AG915", "llama-cpp-bias", ERROR,
        "the llama.cpp converter stops on bias tensors",
        "`bias=\"lora_only\"`/`\"all\"` (`base_layer.bias`, plain biases) and `lora_bias` "
        "(`lora_B.bias`) write tensors the converter does not know: it exits with "
        "\"Unexpected name\". Train without them, or merge the adapter and convert the merged model.",
    ),
    Rule(
        "AG916", "llama-cpp-no-lora-alpha", ERROR,
        "the llama.cpp converter needs lora_alpha in the config",
        "The converter reads `lora_alpha` with no default and stops with `KeyError: 'lora_alpha'` "
        "when it is missing; PEFT itself falls back to 8. Write the alpha the adapter was trained "
        "with (PEFT has been running it with 8) before converting.",
    ),
    Rule(
        "AG917", "llama-cpp-norm-ignored", ERROR,
        "norm weights are converted, then ignored by llama.cpp at load",
        "From b4446 the converter passes norm vectors (e.g. `modules_to_save` of a layernorm) "
        "into the GGUF, but llama.cpp's adapter loader skips every `*_norm.weight`: the adapter "
        "runs with the base model's norms. Merge the adapter if the norms matter.",
    ),
    Rule(
        "AG918", "llama-cpp-fan-in-fan-out", ERROR,
        "Conv1D (fan_in_fan_out) adapters convert transposed for llama.cpp",
        "For GPT-2-style Conv1D layers the converter transposes the base weight, and the LoRA "
        "pair with it; PEFT's pair is already in (out, in) order, so llama.cpp refuses a "
        "non-square module (\"tensor ... has incorrect shape\") and applies the transposed "
        "update to a square one. Merge the adapter into the base and convert the merged model.",
    ),
    Rule(
        "AG919", "llama-cpp-no-converter", ERROR,
        "builds before llama.cpp b3400 have no PEFT-to-GGUF converter",
        "`convert_lora_to_gguf.py` was added in b3400 (#8332); the older `convert-lora-to-ggml.py` "
        "wrote a format current llama.cpp no longer reads. Convert with b3400 or newer.",
    ),
    # (end of AG91x)
    #
    # -- AG92x: the PEFT target (adapter_guard/targets/peft.py) ------------------------
    Rule(
        "AG920", "peft-target-wrong-format", ERROR,
        "--target peft on an adapter that is not a PEFT LoRA folder",
        "`PeftModel.from_pretrained` takes its config class from `peft_type` in "
        "adapter_config.json and its tensors from `adapter_model.safetensors` under "
        "`base_model.model.*` names. An mlx-lm or mlx-vlm adapter has neither (`KeyError: "
        "'peft_type'`): convert it to a PEFT LoRA folder first, or target its own runtime.",
    ),
    Rule(
        "AG921", "peft-target-unknown-config-keys", ERROR,
        "PEFT up to 0.13 refuses a config key its LoraConfig does not have",
        "Up to 0.13 the config is built as `LoraConfig(**config)`, so any key the release lacks is "
        "`TypeError: LoraConfig.__init__() got an unexpected keyword argument`. A newer PEFT's "
        "`save_pretrained` writes every field it has, unused ones at their defaults (0.21 adds 17 keys "
        "0.13 lacks). The finding names each key and the release that added it: keys at their "
        "defaults can be removed (the adapter loads the same without them; proven with PEFT 0.13.2), "
        "keys that are set need that release. From 0.14 unknown keys are dropped with a warning.",
    ),
    Rule(
        "AG922", "peft-target-feature-dropped", ERROR,
        "PEFT 0.14 or later drops a config key it does not know, and the key is set",
        "From 0.14 `PeftConfig.from_peft_type` drops keys the release lacks, with an \"Unexpected "
        "keyword arguments\" warning, assuming \"that removing the unused kwargs will not affect the "
        "default behavior\". A key that is set (`trainable_token_indices`, `target_parameters`, "
        "`alora_invocation_tokens`, ...) is a feature the release does not have: the adapter loads "
        "without it and gives other outputs (PEFT 0.14.0 on `trainable_token_indices` leaves the "
        "trained token rows unloaded). Upgrade to the release the finding names.",
    ),
    Rule(
        "AG923", "peft-target-config-keys-ignored", INFO,
        "PEFT 0.14 or later will warn about config keys it does not know, at their defaults",
        "A config saved by a newer PEFT holds keys the target release lacks, at their default "
        "values (or keys never read on load, like `peft_version`). The release drops them with "
        "an \"Unexpected keyword arguments\" warning and loads the same adapter (proven with PEFT "
        "0.14.0 on 0.21.2 output). A key no PEFT release up to 0.21.2 defines is listed here too: "
        "what it would change is unknown.",
    ),
    Rule(
        "AG924", "peft-target-pattern-key-meaning", ERROR,
        "before PEFT 0.15, a rank_pattern/alpha_pattern key gives modules another rank or alpha",
        "PEFT 0.15 (#2419) matches each `rank_pattern`/`alpha_pattern` key as `(.*\\.)?(KEY)$`; "
        "0.6-0.14 matched `.*\\.KEY$`, so a `^`-anchored key, or a regex that matches only from the "
        "start of the module name (the exact full name aside), never matched, a `|` in a key split the "
        "whole pattern (`q_proj|v_proj` missed v_proj), and up to 0.13 the rank and alpha keys were searched as one "
        "list (a module a rank key matched never got its alpha_pattern value; fixed in 0.14, #2195). "
        "Where the tensors show the rank the key gives today, the older release refuses them (size "
        "mismatch); where only alpha differs it loads with another scale. The finding lists the "
        "modules. Upgrade, or write keys every release reads alike: a module's full name without `^`, an "
        "alternation in brackets (`(q_proj|v_proj)`).",
    ),
    Rule(
        "AG925", "peft-target-layer-unsupported", ERROR,
        "the adapter has LoRA on a layer type the PEFT release cannot adapt",
        "A 5-D `lora_A` is the kernel of an `nn.Conv3d` LoRA layer (PEFT 0.14, #2082), a 3-D one of "
        "an `nn.Conv1d` layer (0.15, #2333); DoRA on `nn.Conv1d` came in 0.16 (#2531). An older "
        "release raises `ValueError: Target module Conv1d(...) is not supported` (or a bare "
        "`NotImplementedError` for DoRA on Conv1d in 0.15).",
    ),
    # (end of AG92x)
    #
    # -- AG93x: the mlx-lm target (adapter_guard/targets/mlx_lm.py) --------------------
    Rule(
        "AG930", "mlx-lm-target-wrong-format", ERROR,
        "mlx-lm cannot load an adapter of this format",
        "mlx-lm loads its own adapter folders (`adapter_config.json` + `adapters.safetensors`, "
        "`lora_a`/`lora_b` factors under the text model's paths), and before 0.6 only "
        "`adapters.npz`. A PEFT adapter is not read at all; an mlx-vlm adapter's paths start at the "
        "VLM root (`language_model.`), so mlx-lm 0.32 refuses it and older releases load it with "
        "every tensor ignored; an mlx-vlm 0.5 config has no layer count to read. Load the adapter "
        "with the runtime it was written for, or convert it.",
    ),
    Rule(
        "AG931", "mlx-lm-target-lora-layers", ERROR,
        "mlx-lm before 0.19 needs lora_layers, and the config has only num_layers",
        "mlx-lm 0.6-0.18 reads `config.lora_layers` (0.19 renamed it `num_layers`), so a current "
        "config raises AttributeError there. The safe fix writes `lora_layers` with the value of "
        "`num_layers` (-1 for num_layers <= 0: 0.18 wraps no layer for 0 and every layer for -1); "
        "current mlx-lm ignores the extra key, so the adapter loads identically on both.",
        fix=SOMETIMES_SAFE,
    ),
    Rule(
        "AG932", "mlx-lm-target-use-dora", ERROR,
        "a DoRA adapter would load as plain LoRA on mlx-lm before 0.19 (no use_dora)",
        "mlx-lm 0.13.1-0.18 builds DoRA layers only when `use_dora` is true (it does not read "
        "`fine_tune_type`); otherwise it builds LoRA layers and `load_weights(strict=False)` drops "
        "the `m` magnitude tensors without a word. Before 0.13.1 there is no DoRA. The safe fix "
        "writes `use_dora: true` when `fine_tune_type` is \"dora\" and the tensors hold `m`.",
        fix=SOMETIMES_SAFE,
    ),
    Rule(
        "AG933", "mlx-lm-target-full-fine-tune", ERROR,
        "fine_tune_type \"full\" needs mlx-lm 0.19 or later",
        "Full fine-tuning and `fine_tune_type` arrived together in mlx-lm 0.19.0 (#903). Older "
        "releases ignore the key and try to wrap LoRA layers from `lora_layers` and "
        "`lora_parameters` (null for a full fine-tune), so the weights cannot be loaded there.",
    ),
    Rule(
        "AG934", "mlx-lm-target-tensors-ignored", ERROR,
        "mlx-lm before 0.32 would load the adapter with some tensors silently ignored",
        "Before 0.32.0 (#1727), `load_adapters` ends in `model.load_weights(..., strict=False)`: "
        "tensors that no wrapped module takes (other leaves than lora_a/lora_b/m, `m` tensors when "
        "DoRA is off, modules outside `lora_parameters.keys`, layers before the last `num_layers`) "
        "are dropped without an error, and the adapter runs without them. mlx-lm 0.32 refuses such a "
        "file, which the format rules (AG103, AG302, AG305, AG402) report; fix what they say.",
    ),
    Rule(
        "AG935", "mlx-lm-target-default-keys", ERROR,
        "without lora_parameters.keys, mlx-lm before 0.28.2 wraps only its per-model default modules",
        "Until 0.28.2 (#515), `linear_to_lora_layers` without `keys` wrapped a default set per "
        "model type (`self_attn.q_proj` and `self_attn.v_proj` for Llama-like models) and raised "
        "for unknown types; since 0.28.2 it wraps every Linear, SwitchLinear and Embedding of the "
        "layers, which is what the trainer then saves. Loaded on an older release, the other "
        "modules' tensors are dropped silently. The safe fix writes `lora_parameters.keys` from the "
        "tensors: newer releases then wrap only modules that have tensors, which changes nothing "
        "(an unwrapped module had a zero `lora_b`).",
        fix=ALWAYS_SAFE,
    ),
    Rule(
        "AG936", "mlx-lm-target-before-adapter-config", ERROR,
        "mlx-lm before 0.6 reads no adapter_config.json, and this adapter needs it",
        "Before 0.6.0 (#636), `load(..., adapter_file=...)` took one weights file and no config: "
        "it rebuilt every module named in the file as a LoRALinear with its defaults, whose "
        "scale is 10 x alpha 16 / rank 8 = 20 whatever the file's rank. An adapter trained with "
        "another `scale`, a DoRA adapter (no DoRA before 0.13.1) or a full fine-tune loads "
        "differently or not at all there. Use mlx-lm 0.6 or later.",
    ),
    Rule(
        "AG937", "mlx-lm-target-negative-num-layers", ERROR,
        "mlx-lm 0.19-0.21.4 skips the first layers for a negative num_layers",
        "From 0.19.0 until 0.21.5 (#1294), `linear_to_lora_layers` wrapped "
        "`model.layers[-min(num_layers, 0):]`: a positive count wrapped every layer (harmless), "
        "but -1 wraps all layers but the first, and -k all but the first k. The tensors of the "
        "skipped layers are dropped silently (strict=False). `num_layers: 0` means every layer on "
        "every release since 0.19; this is not fixed because it changes what the config says.",
    ),
    Rule(
        "AG938", "mlx-lm-target-switch-layout", ERROR,
        "the expert (SwitchLinear) factors are in the other release's lora_a layout",
        "mlx-lm 0.28.3 (#522) changed LoRASwitchLinear's `lora_a` from (r * experts, in) to "
        "(experts, r, in); `lora_b` stayed (experts, out, r). A release of the other side loads the "
        "factors without checking shapes (before 0.32) and the experts' forward pass fails or "
        "computes garbage; 0.32 refuses the file. Load the adapter with a release of its own "
        "layout, or reshape `lora_a` (the rank and experts are in `lora_b`).",
    ),
    Rule(
        "AG939", "mlx-lm-target-alpha", ERROR,
        "mlx-lm before 0.14.2 needs lora_parameters.alpha, and scales by scale x alpha / rank",
        "Until 0.14.2 (#614), `linear_to_lora_layers` read `config[\"alpha\"]` (a config "
        "without it raises KeyError) and the LoRA and DoRA layers used `scale * alpha / rank`; "
        "since then `scale` is used as is and `alpha` is not read. The safe fix writes "
        "`alpha` = `lora_parameters.rank`, which gives the old releases the same scale and "
        "changes nothing for the new ones. An alpha the user wrote is never changed: when it "
        "differs from the rank the old releases scale the adapter differently.",
        fix=SOMETIMES_SAFE,
    ),
    # (end of AG93x)
    #
    # -- AG94x: the mlx-vlm target (adapter_guard/targets/mlx_vlm.py) ------------------
    Rule(
        "AG940", "mlx-vlm-wrong-format", ERROR,
        "mlx-vlm cannot load an adapter of this format",
        "mlx-vlm's `apply_lora_layers` reads `adapters.safetensors` (0.7.8+: or "
        "`weights.safetensors`) and an MLX config: `lora_parameters` (0.6+) or the old top-level "
        "`rank`. A PEFT adapter (`adapter_model.safetensors`) and an `adapters.npz` are not found "
        "or refused; an mlx-lm adapter from before 0.19 has tensors named from a text model's root, "
        "which bind to nothing in an mlx-vlm model.",
    ),
    Rule(
        "AG941", "mlx-vlm-old-config-schema", ERROR,
        "mlx-vlm 0.5 and older refuse a config beyond {rank, alpha, dropout}",
        "Up to 0.5.0, `apply_lora_layers` requires a top-level `rank` (ValueError \"The adapter "
        "does not have lora params in the config\") and then calls `get_peft_model(model, layers, "
        "**config)`, whose only keywords are `rank`, `alpha`, `dropout`, `freeze` and `verbose`: "
        "any other key is a TypeError. The mlx-lm style schema mlx-vlm writes since 0.6 "
        "(`fine_tune_type`, `num_layers`, `lora_parameters`) therefore never loads there; 0.6 and "
        "newer read the old schema by name and ignore extra keys.",
    ),
    Rule(
        "AG942", "mlx-vlm-full-fine-tune-unsupported", ERROR,
        "mlx-vlm before 0.7.8 refuses a full fine-tune config without lora_parameters",
        "mlx-vlm 0.7.8+ saves a full fine-tune as `{\"fine_tune_type\": \"full\"}` and loads it "
        "(strict=True). From 0.6.0 to 0.7.6 `apply_lora_layers` first requires `rank` or "
        "`lora_parameters` in the config and raises ValueError without them. With an empty "
        "`lora_parameters` object those releases skip the LoRA setup for `full` and load the "
        "weights; 0.7.8+ ignores it.",
    ),
    Rule(
        "AG943", "mlx-vlm-text-model-tensors", ERROR,
        "an mlx-lm adapter's tensors bind to nothing in mlx-vlm",
        "Every generative model mlx-vlm builds (text-only ones included, since 0.6.14 removed "
        "the mlx-lm fallback) roots its language model at `language_model.`, and `apply_lora_layers` loads "
        "with `strict=False` from the model root: tensors named `model.layers...`, as mlx-lm "
        "writes them, are skipped, and the adapter has no effect, without an error "
        "(block-relative `keys` such as `self_attn.q_proj` raise AttributeError instead). MLX "
        "adapters whose tensors start with `language_model.` (unsloth's of a VLM) load.",
    ),
    # (end of AG94x)
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
