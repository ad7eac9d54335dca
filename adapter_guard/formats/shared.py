"""Rules every format shares: the JSON document, the files beside it, value checks. Pure."""

from __future__ import annotations

import math

from .. import jsondoc
from ..findings import Finding, Fix, JsonPath
from ..infer import AdapterShape
from ..readers import AdapterFiles
from ..record import MutableRecord, Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the lint path
if TYPE_CHECKING:
    from typing import Any

#: Weight formats that can execute code or hold pickled objects when loaded.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".npz")
#: How many names a message lists before it says "and N more".
LIST_LIMIT = 5


class Inputs(MutableRecord):
    """Everything the config rules look at, already read from disk."""

    __slots__ = ("config", "shape", "total_layers", "base_source", "no_base_reason", "base_modules")

    def __init__(self, config: dict[str, Any], shape: AdapterShape | None, total_layers: int | None = None,
                 base_source: str | None = None, no_base_reason: str = "",
                 base_modules: dict[str, frozenset[str]] | None = None) -> None:
        self.config = config
        #: None when the weights could not be read (a finding already says why).
        self.shape = shape
        #: The base model's layer count, when a base config.json is known.
        self.total_layers = total_layers
        #: Where that base config came from, named in every finding that uses it.
        self.base_source = base_source
        #: Why no base config was found, for the findings that needed one.
        self.no_base_reason = no_base_reason
        #: Per layer prefix, the modules mlx-lm's default key set wraps, from the base weights' headers.
        self.base_modules = base_modules


class Emitter:
    def __init__(self, path: str):
        self.path = path
        self.findings: list[Finding] = []

    def __call__(self, code: str, message: str, json_path: JsonPath | None = None, fix: Fix | None = None) -> None:
        self.findings.append(Finding(code, self.path, message, json_path=json_path, fix=fix))


def names(items, limit: int = LIST_LIMIT) -> str:
    items = sorted(items)
    shown = ", ".join(f"`{i}`" for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float: no LoRA value can use it
        return False


# -- the JSON document ----------------------------------------------------------


def parse_config(data: bytes, path: str) -> tuple[list[Finding], jsondoc.Document | None]:
    """Findings about the JSON text itself, and the document when it parses."""
    try:
        doc = jsondoc.load(data)
    except jsondoc.JsonDocError as exc:
        return [Finding("AG001", path, str(exc), line=getattr(exc, "line", None))], None
    findings = [
        Finding("AG002", path, f"key {key!r} appears more than once in {_where(obj)}", json_path=obj + (key,))
        for obj, key in doc.duplicates
    ]
    findings += [
        Finding("AG004", path, f"`{_where(p)}` is {_literal(doc, p)}, which is not valid JSON (NaN/Infinity)", json_path=p)
        for p in doc.nonfinite
    ]
    if not isinstance(doc.value, dict):
        findings.append(Finding("AG003", path, f"the top level is a JSON {_json_type(doc.value)}, not an object"))
    return findings, doc


def _where(json_path) -> str:
    return ".".join(str(p) for p in json_path) or "the top-level object"


def _json_type(value) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _literal(doc, json_path) -> str:
    span = doc.span(json_path)
    return doc.text[span[0] : span[1]] if span else "not finite"


# -- the files beside the config -----------------------------------------------------


def pickle_rules(files: AdapterFiles, emit: Emitter, skip: tuple[str, ...] = ()) -> None:
    for name, is_file in files.entries.items():
        if is_file and name.endswith(PICKLE_SUFFIXES) and name not in skip:
            emit("AG107", f"`{name}` is a pickle-based weights file: unsafe to load, adapter-guard never loads it")


def weights_shapes(
    files: AdapterFiles, weights_name: str, emit: Emitter, *,
    missing: str = "AG101", unreadable: str = "AG102", consequence: str = "the adapter cannot be reloaded",
) -> dict[str, tuple[int, ...]] | None:
    """The tensor shapes of the weights file the format loads; a finding when it is missing or
    unreadable (``missing`` / ``unreadable`` are the format's codes for those)."""
    weights = files.weights.get(weights_name)
    if weights_name not in files.entries or weights is None:
        emit(missing, f"`{weights_name}` is missing next to the config; {consequence}")
        return None
    if weights.not_fetched is not None:  # a Git LFS pointer is not a corrupt file
        emit("AG110", weights.not_fetched)
        return None
    if weights.error is not None:
        emit(unreadable, f"`{weights_name}`: {weights.error}")
        return None
    return weights.shapes


# -- a base model's config.json -------------------------------------------------------


def base_layer_count(config: dict[str, Any]) -> int | None:
    """``num_hidden_layers`` (or its other spellings) from a base config, text config included."""
    for table in (config, config.get("text_config"), config.get("language_config")):
        if isinstance(table, dict):
            for key in ("num_hidden_layers", "n_layers", "num_layers"):
                if is_int(table.get(key)) and table[key] > 0:
                    return table[key]
    return None


# -- widths against the base model ---------------------------------------------------------


class ModuleWidths(Record):
    """A module's input and output widths as its factors give them (each format reads its own axes)."""

    __slots__ = ("name", "width_in", "width_out", "embedding")

    def __init__(self, name: str, width_in: int, width_out: int, embedding: bool = False) -> None:
        self.name = name
        self.width_in = width_in
        self.width_out = width_out
        self.embedding = embedding


#: Projections that read the residual stream (input = hidden size) and write it (output = hidden size).
READS_HIDDEN = frozenset({"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "c_attn", "c_fc", "wq", "wk", "wv",
                          "w1", "w3", "query_key_value", "qkv_proj", "gate_up_proj"})
WRITES_HIDDEN = frozenset({"o_proj", "down_proj", "wo", "w2", "out_proj"})
EMBEDDINGS = frozenset({"embed_tokens", "wte", "tok_embeddings", "embed_in", "word_embeddings"})
#: Towers whose widths are not the language model's hidden size.
OTHER_TOWERS = ("vision", "visual", "audio", "projector", "image", "speech")


def base_dims(base: dict[str, Any]) -> tuple[int | None, int | None]:
    """(hidden size, vocabulary size) of a base config, the text config's first for a VLM."""
    hidden = vocab = None
    for table in (base.get("text_config"), base.get("language_config"), base):
        if not isinstance(table, dict):
            continue
        if hidden is None:
            hidden = next((table[k] for k in ("hidden_size", "n_embd", "d_model", "dim") if is_int(table.get(k))), None)
        if vocab is None and is_int(table.get("vocab_size")):
            vocab = table["vocab_size"]
    return hidden, vocab


def base_width_rules(modules: list[ModuleWidths], base: dict[str, Any], emit: Emitter) -> None:
    """AG108: each recognised module's widths against the base config's hidden and vocabulary sizes.

    Only names whose widths are certain are judged: the attention and MLP
    projections of the language model, its embedding and its output head.
    """
    hidden, vocab = base_dims(base)
    wrong = []
    for m in modules:
        if any(t in m.name for t in OTHER_TOWERS):
            continue
        leaf = m.name.rpartition(".")[2]
        expected: list[tuple[str, int, int | None]] = []
        if leaf in READS_HIDDEN:
            expected.append(("input", m.width_in, hidden))
        elif leaf in WRITES_HIDDEN:
            expected.append(("output", m.width_out, hidden))
        elif leaf in EMBEDDINGS:
            expected += [("vocabulary", m.width_in, vocab), ("embedding", m.width_out, hidden)]
        elif leaf == "lm_head":
            expected += [("input", m.width_in, hidden), ("vocabulary", m.width_out, vocab)]
        for what, got, want in expected:
            if want is not None and got != want:
                wrong.append(f"`{m.name}` {what} width {got}, the base has {want}")
    if wrong:
        more = f" and {len(wrong) - LIST_LIMIT} more" if len(wrong) > LIST_LIMIT else ""
        emit("AG108", "the adapter does not fit the base model (trained for another base?): "
             + "; ".join(wrong[:LIST_LIMIT]) + more)
