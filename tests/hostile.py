"""Builders and oracles shared by the hostile-input tests (``tests/test_hostile_*.py``) and ``bench/fuzz.py``.

Everything here drives the real command line (``main([...])``) and judges what
it left behind: the exit code, the output, and the bytes on disk. The
generators are plain functions of a ``draw`` callable, so the same code feeds
hypothesis (``st.data().draw``) in the test suite and a seeded
``random.Random`` in the fuzz bench.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from adapter_guard import jsondoc
from adapter_guard.cli import main
from adapter_guard.registry import RULES

CONFIG = "adapter_config.json"
WEIGHTS = "adapters.safetensors"

#: A complete mlx_lm.lora-style config with values whose spelling a fix must keep.
COMPLETE = """\
{
    "fine_tune_type": "lora",
    "learning_rate": 1e-05,
    "lora_parameters": {
        "rank": 8,
        "dropout": 0.0,
        "scale": 20.0
    },
    "model": "caf\\u00e9/tiny",
    "num_layers": -1,
    "unknown_key": [1, 2.50, 3e0]
}
"""

ATTENTION = ("self_attn.q_proj", "self_attn.v_proj")
FORMATS = ("text", "json", "github", "sarif")


# -- files ------------------------------------------------------------------------


def tensor(dtype: str, shape: list, offsets: list) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


def safetensors_bytes(header: dict | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    """8-byte little-endian length, the header JSON, the data region. ``length`` overrides the prefix."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def lora_header(layers=(0, 1), rank: int = 8, modules=ATTENTION, dims: int = 16) -> tuple[dict, bytes]:
    """A valid F32 LoRA header (and its zero data region) for ``modules`` in ``layers``."""
    header, offset = {}, 0
    for layer in layers:
        for module in modules:
            for leaf, shape in (("lora_a", [dims, rank]), ("lora_b", [rank, dims])):
                size = 4 * shape[0] * shape[1]
                header[f"model.layers.{layer}.{module}.{leaf}"] = tensor("F32", shape, [offset, offset + size])
                offset += size
    return header, bytes(offset)


def write_adapter(directory: Path, config: str | bytes = COMPLETE, weights: bytes | None = None) -> Path:
    """An adapter directory; ``weights`` defaults to a valid rank-8 file for layers 0-1."""
    directory.mkdir(parents=True, exist_ok=True)
    if weights is None:
        weights = safetensors_bytes(*lora_header())
    (directory / WEIGHTS).write_bytes(weights)
    path = directory / CONFIG
    path.write_bytes(config.encode() if isinstance(config, str) else config)
    return path


def temp_files(root: Path) -> list[Path]:
    """Temporary files atomic_write leaves when it is killed (or forgets to clean up)."""
    return sorted(p for p in root.rglob(".*.tmp"))


# -- running --------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str

    def findings(self) -> list[dict]:
        """The findings of a ``--output-format json`` run."""
        return json.loads(self.out)

    def codes(self) -> set[str]:
        return {f["code"] for f in self.findings()}


def run_cli(*args: str | os.PathLike) -> Run:
    """``main([...])`` in-process with its own stdout/stderr; never raises for a clean exit."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([os.fspath(a) for a in args])
    return Run(code, out.getvalue(), err.getvalue())


def exit_problems(run: Run) -> list[str]:
    """What is wrong with how a run ended: only 0 and 1 are answers, and no traceback."""
    problems = []
    if run.code not in (0, 1):
        problems.append(f"exit code {run.code}")
    for marker in ("internal error", "Traceback"):
        if marker in run.err or marker in run.out:
            problems.append(f"{marker!r} in the output")
    return problems


def output_problems(run: Run, output_format: str) -> list[str]:
    """Whether the report is well-formed for its format (the CLI prints "Fixing ..." to stderr off text)."""
    problems = []
    if output_format in ("json", "sarif"):
        try:
            data = json.loads(run.out)
        except ValueError as exc:
            return [f"{output_format} output is not JSON: {exc}"]
        items = data if output_format == "json" else data["runs"][0]["results"]
        key = "code" if output_format == "json" else "ruleId"
        problems += [f"unknown rule {item[key]!r}" for item in items if item[key] not in RULES]
    elif output_format == "github":
        problems += [f"not a workflow command: {line!r}" for line in workflow_lines(run.out) if not COMMAND(line)]
    return problems


def exit_code_problems(run: Run, args: list[str]) -> list[str]:
    """A json run exits 1 exactly when an error or warning remains (``--diff`` also exits 1 on a diff)."""
    if "--diff" in args or run.code not in (0, 1):
        return []
    remaining = [f["code"] for f in run.findings() if not f["fixed"] and f["severity"] in ("error", "warning")]
    if bool(remaining) != (run.code == 1):
        return [f"exit code {run.code} with remaining findings {remaining}"]
    return []


# -- GitHub workflow commands, read as the runner reads them -----------------------------

#: The runner splits its output at CR, LF and CRLF, and treats a line that
#: starts with ``::`` as a command: name, properties up to the next ``::``, data.
COMMAND = re.compile(r"::(?P<kind>[a-z-]+)(?: (?P<props>.*?))?::(?P<data>.*)").fullmatch


def workflow_lines(output: str) -> list[str]:
    return [line for line in re.split(r"\r\n|\r|\n", output) if line]


def unescape(text: str) -> str:
    """@actions/core's escaping, undone (percent first would be wrong: ``%253A`` is ``%3A``)."""
    return re.sub(r"%(25|0D|0A|3A|2C)", lambda m: {"25": "%", "0D": "\r", "0A": "\n", "3A": ":", "2C": ","}[m[1]], text)


def command_properties(props: str) -> dict[str, str]:
    return {key: unescape(value) for key, _, value in (item.partition("=") for item in props.split(","))}


# -- the preservation oracle --------------------------------------------------------------


class _Members(dict):
    """A JSON object that remembers every key it was written with, duplicates included, in order."""

    order: list[str]


def _members(pairs: list[tuple[str, Any]]) -> _Members:
    obj = _Members(pairs)
    obj.order = [key for key, _ in pairs]
    return obj


def _strict_equal(a: Any, b: Any) -> bool:
    """Type-strict JSON equality: 1, 1.0 and true differ; NaN equals NaN."""
    if type(a) is not type(b) and not (isinstance(a, dict) and isinstance(b, dict)):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return a == b


def _replaceable(path: tuple, old: Any, unsafe: bool) -> bool:
    """The only values a fix may replace (every other fix inserts a missing key)."""
    if path in (("lora_parameters",), ("lora_parameters", "keys")):
        return old is None  # a null lora_parameters (AG201) or keys (AG401) is filled in
    return path == ("lora_parameters", "rank") and unsafe  # AG203 under --unsafe-fixes


def preservation_problems(before: bytes, after: bytes, *, unsafe: bool) -> list[str]:
    """How a fix damaged a config: invalid result, a dropped key, or a value respelled or changed.

    Fixes are edits: they insert missing members and replace only the few
    values listed in ``_replaceable``. So every key of ``before`` is still
    there, in order, duplicates included, and every value that did not change
    keeps its exact source text (number spelling, escapes, whitespace inside).
    """
    try:
        old_doc = jsondoc.load(before)
        new_doc = jsondoc.load(after)
        old = json.loads(before, object_pairs_hook=_members)
        new = json.loads(after, object_pairs_hook=_members)
    except (ValueError, jsondoc.JsonDocError) as exc:
        return [f"the fixed file does not parse: {exc}"]
    problems: list[str] = []
    work = [((), old, new)]
    while work:
        path, a, b = work.pop()
        if _strict_equal(a, b):
            old_span, new_span = old_doc.span(path), new_doc.span(path)
            if old_doc.text[slice(*old_span)] != new_doc.text[slice(*new_span)]:
                problems.append(f"{jsondoc.format_path(path)} kept its value but not its spelling")
        elif isinstance(a, dict) and isinstance(b, dict):
            if b.order[: len(a.order)] != a.order:
                problems.append(f"{jsondoc.format_path(path)}: members {a.order} became {b.order}")
            work.extend((path + (key,), a[key], b[key]) for key in a if key in b)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            work.extend((path + (i,), x, y) for i, (x, y) in enumerate(zip(a, b)))
        elif not _replaceable(path, a, unsafe):
            problems.append(f"{jsondoc.format_path(path)} changed from {a!r:.80} to {b!r:.80}")
    return problems


# -- one complete, judged run ------------------------------------------------------------------


def judge(directory: Path, args: list[str], output_format: str, *, before: bytes | None) -> list[str]:
    """Run the CLI on ``directory`` and list every broken promise (empty: all kept).

    ``before`` is the config's bytes before the run (None when it is not a
    regular file). Checked: the exit code, the report's format, and that the
    config is either untouched or a valid, preserving edit of the original,
    which a second ``--fix`` leaves alone; no temporary file is left behind.
    """
    run = run_cli(directory, "--output-format", output_format, *args)
    problems = exit_problems(run) + output_problems(run, output_format)
    if output_format == "json" and not problems:
        problems += exit_code_problems(run, args)
    config = directory / CONFIG
    after = config.read_bytes() if before is not None else None
    writes = "--fix" in args and "--diff" not in args
    if before is not None and after != before:
        if not writes:
            problems.append("the config changed without --fix")
        problems += preservation_problems(before, after, unsafe="--unsafe-fixes" in args)
        if not problems:
            again = run_cli(directory, *args)
            problems += [f"second run: {p}" for p in exit_problems(again)]
            if config.read_bytes() != after:
                problems.append("a second --fix changed the file again")
    leftovers = temp_files(directory)
    if leftovers:
        problems.append(f"temporary files left: {[p.name for p in leftovers]}")
    return problems


# -- generators: configs -------------------------------------------------------------------------

Draw = Callable[..., Any]  # draw(kind, *args): see RandomDraw and hypothesis_draw

KNOWN_KEYS = ("fine_tune_type", "num_layers", "lora_parameters", "rank", "scale", "dropout", "alpha",
              "unsloth_mlx_lora_module_paths", "model", "base_model_name_or_path", "peft_type")
LORA_KEYS = ("rank", "scale", "dropout", "keys", "alpha", "lora_alpha")
MODULE_NAMES = ("self_attn.q_proj", "self_attn.v_proj", "mlp.gate_proj", "model.embed_tokens", "lm_head",
                "model.layers.0.self_attn.q_proj", "")
ODD_VALUES = (None, True, False, 0, -1, 1.5, 8.0, "8", "", [], {}, [8], {"r": 8}, 10**400, -(10**30), 1e308,
              float("nan"), float("inf"), float("-inf"), "caf\u00e9", "\u2028\n::error::x", "\ud800")


def odd_value(draw: Draw, depth: int = 0) -> Any:
    """Any JSON value, biased to the ones that break type checks."""
    kind = draw("choice", ("odd", "odd", "int", "float", "text", "list", "dict"))
    if kind == "odd":
        return draw("choice", ODD_VALUES)
    if kind == "int":
        return draw("int", -(2**70), 2**70)
    if kind == "float":
        return draw("float")
    if kind == "text":
        return draw("text")
    if depth >= 2:
        return None
    if kind == "list":
        return [odd_value(draw, depth + 1) for _ in range(draw("int", 0, 3))]
    return {draw("text"): odd_value(draw, depth + 1) for _ in range(draw("int", 0, 3))}


def field_value(draw: Draw, valid: list, weight: int = 3) -> Any:
    """Mostly a valid value, sometimes any odd one."""
    return draw("choice", valid) if draw("int", 0, weight) else odd_value(draw)


def gen_config(draw: Draw) -> dict:
    """A config object: known fields, valid or not, and unknown keys whose text a fix must keep."""
    config: dict[str, Any] = {}
    if draw("bool"):
        config["fine_tune_type"] = field_value(draw, ["lora", "dora", "full", "LoRA"])
    if draw("int", 0, 4):
        config["num_layers"] = field_value(draw, [-1, 0, 1, 2, 4, 16, 10**20])
    shape = draw("choice", ("object", "object", "object", "null", "odd", "absent"))
    if shape == "object":
        lora = {}
        for key, valid in (("rank", [8, 4, 16, 1]), ("scale", [20.0, 1, 0.5, 1e-3]), ("dropout", [0.0, 0.05, 0])):
            if draw("int", 0, 3):
                lora[key] = field_value(draw, valid)
        if draw("int", 0, 3) == 0:
            lora["keys"] = field_value(draw, [None, [], ["self_attn.q_proj"], list(MODULE_NAMES)])
        if draw("int", 0, 5) == 0:
            lora[draw("choice", ("alpha", "lora_alpha"))] = field_value(draw, [16, 32.0, 8])
        config["lora_parameters"] = lora
    elif shape == "null":
        config["lora_parameters"] = None
    elif shape == "odd":
        config["lora_parameters"] = odd_value(draw)
    for key in ("rank", "scale", "dropout", "alpha"):
        if draw("int", 0, 6) == 0:
            config[key] = field_value(draw, [8, 20.0, 0.0, 16])
    if draw("int", 0, 6) == 0:
        config["unsloth_mlx_lora_module_paths"] = field_value(
            draw, [["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj"], []]
        )
    for _ in range(draw("int", 0, 3)):
        config[draw("choice", ("model", "learning_rate", "x", draw("text")))] = odd_value(draw)
    keys = list(config)
    order = draw("permutation", len(keys))
    return {keys[i]: config[keys[i]] for i in order}


def render_config(draw: Draw, config: Any) -> bytes:
    """``config`` as some tool might write it: indentation, separators, escapes, CRLF."""
    indent = draw("choice", (None, 0, 2, 4, "\t"))
    separators = draw("choice", (None, (",", ":"), (", ", ": "), (" , ", " : "), (",\r\n\t", "\t:\r"), ("\n,", ":\n ")))
    text = json.dumps(config, indent=indent, separators=separators, ensure_ascii=draw("bool"))
    if draw("int", 0, 4) == 0:
        text = text.replace("\n", "\r\n")
    text += draw("choice", ("\n", "", "\n\n", "  "))
    return text.encode("utf-8", "surrogatepass")


def mutate_bytes(draw: Draw, data: bytes, inserts: tuple[bytes, ...]) -> bytes:
    """One random byte-level corruption."""
    kind = draw("choice", ("truncate", "flip", "insert", "delete", "duplicate"))
    pos = draw("int", 0, len(data))
    if kind == "truncate":
        return data[:pos]
    if kind == "flip" and data:
        pos = min(pos, len(data) - 1)
        return data[:pos] + bytes([draw("int", 0, 255)]) + data[pos + 1 :]
    if kind == "insert":
        return data[:pos] + draw("choice", inserts) + data[pos:]
    if kind == "delete":
        return data[:pos] + data[pos + draw("int", 1, 8) :]
    return data[:pos] + data[pos : pos + draw("int", 1, 40)] + data[pos:]


CONFIG_INSERTS = (b"\xff", b"\x00", b"\xef\xbb\xbf", b"NaN", b"-Infinity", b",", b"]", b"}", b"{", b'"', b"\\",
                  b'"lora_parameters": 1, ', b'"rank": 8, ', b"9" * 5000, b"[" * 600, b"\xed\xa0\x80", b"\r")


def gen_config_bytes(draw: Draw) -> bytes:
    """A config file: well-formed most of the time, then duplicated keys, BOMs, cuts, flips..."""
    data = render_config(draw, gen_config(draw))
    style = draw("choice", ("plain", "plain", "plain", "duplicate", "escape", "mutate", "wrap"))
    if style == "escape":  # spell a known key with a \u escape: the same key to every JSON reader
        key = draw("choice", KNOWN_KEYS + LORA_KEYS).encode()
        if b'"' + key + b'"' in data:
            i = draw("int", 0, len(key) - 1)
            data = data.replace(b'"' + key + b'"', b'"' + key[:i] + b"\\u%04x" % key[i] + key[i + 1 :] + b'"', 1)
    elif style == "duplicate" and data.lstrip().startswith(b"{"):
        at = data.index(b"{") + 1
        key = draw("choice", KNOWN_KEYS + ("x",))
        data = data[:at] + json.dumps(key).encode() + b": " + json.dumps(odd_value(draw)).encode() + b", " + data[at:]
        if data.endswith(b", }") or b"{, }" in data:  # the object was empty: drop the dangling comma
            data = data.replace(b", }", b"}")
    elif style == "mutate":
        for _ in range(draw("int", 1, 3)):
            data = mutate_bytes(draw, data, CONFIG_INSERTS)
    elif style == "wrap":
        data = draw("choice", (b"[%s]", b"\xef\xbb\xbf%s", b"%s%s", b'{"a": %s}')).replace(b"%s", data, 1).replace(b"%s", data)
    return data


# -- generators: safetensors headers ------------------------------------------------------------

DTYPES = ("F32", "F16", "BF16", "F64", "I8", "U8", "F4", "F8_E4M3", "BOOL", "Q4", "f32", "")
DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I8": 1, "U8": 1, "F8_E4M3": 1, "BOOL": 1}
WEIGHTS_INSERTS = (b"\xff", b"\x00", b"{", b"}", b"[", b'"', b"-1", b"1e999", b"\xed\xa0\x80", b"9" * 30)


def gen_tensors(draw: Draw) -> dict[str, list[int]]:
    """Tensor names and shapes: a LoRA/DoRA adapter of some layout, with the odd stray or mismatch."""
    layout = draw("choice", ("linear", "linear", "linear", "switch", "legacy", "embedding"))
    rank = draw("int", 1, 8)
    prefix = draw("choice", ("model.layers", "model.layers", "language_model.model.layers", "layers"))
    first = draw("int", 0, 3)
    layers = range(first, first + draw("int", 0, 4))
    modules = draw("choice", (ATTENTION, ATTENTION[:1], ("mlp.experts.gate_proj",), ("self_attn.q_proj", "mlp.down_proj")))
    dora = draw("int", 0, 4) == 0
    tensors: dict[str, list[int]] = {}
    for layer in layers:
        for module in modules:
            name = f"{prefix}.{layer}.{module}"
            if layout == "switch":
                a, b = [2, rank, 4], [2, 4, rank]
            elif layout == "legacy":
                a, b = [2 * rank, 4], [2, 4, rank]
            else:
                a, b = [4, rank], [rank, 4]
            tensors[f"{name}.lora_a"], tensors[f"{name}.lora_b"] = a, b
            if dora:
                tensors[f"{name}.m"] = [4]
    if layout == "embedding" or draw("int", 0, 6) == 0:
        tensors["model.embed_tokens.lora_a"], tensors["model.embed_tokens.lora_b"] = [8, rank], [rank, 4]
    for _ in range(draw("int", 0, 2) if draw("int", 0, 4) == 0 else 0):
        kind = draw("choice", ("foreign", "unpaired", "mismatch", "name"))
        names = sorted(tensors)
        if kind == "foreign":
            tensors[draw("choice", ("model.layers.0.self_attn.q_proj.weight", "lora_A.weight", "x"))] = [2, 2]
        elif kind == "unpaired" and names:
            del tensors[draw("choice", names)]
        elif kind == "mismatch" and names:
            tensors[draw("choice", names)] = [draw("int", 0, 9) for _ in range(draw("int", 0, 4))]
        else:
            tensors[draw("choice", ("", ".", "model.layers.", "model.layers.x.q.lora_a", "a\n::error::b.lora_a",
                                    "model.layers.99999999999999999999.q.lora_a",
                                    "model.layers." + "9" * 5000 + ".q.lora_a"))] = [1, 1]
    return tensors


def header_for(draw: Draw, tensors: dict[str, list[int]]) -> tuple[dict, bytes]:
    dtype = draw("choice", ("F32", "F32", "F16", "BF16"))
    header: dict[str, Any] = {}
    if draw("int", 0, 3) == 0:
        header["__metadata__"] = {"format": "mlx"}
    offset = 0
    for name, shape in tensors.items():
        size = DTYPE_BYTES[dtype] * math.prod(shape)
        header[name] = tensor(dtype, shape, [offset, offset + size])
        offset += size
    return header, bytes(offset)


def corrupt_header(draw: Draw, header: dict, data: bytes) -> tuple[Any, bytes]:
    """One structural corruption of a valid header."""
    names = [n for n in header if n != "__metadata__"]
    kind = draw("choice", ("offsets", "dtype", "shape", "metadata", "entry", "top", "many"))
    if kind == "many":  # thousands of tensors
        count = draw("int", 1000, 4000)
        return {f"model.layers.{i}.q.lora_a": tensor("F32", [1, 1], [4 * i, 4 * i + 4]) for i in range(count)}, bytes(4 * count)
    if kind == "top":
        return draw("choice", ([], [header], 3, "x", None, True)), data
    if kind == "metadata":
        header["__metadata__"] = draw("choice", ([1], "x", {"a": 1}, {"a": None}, 0, {"\ud800": "x"}))
        return header, data
    if not names:
        return header, data
    name = draw("choice", names)
    entry = header[name]
    if kind == "offsets":
        end = len(data)
        entry["data_offsets"] = draw("choice", ([end, end + 4], [-4, 0], [4, 0], [0, 2**64], [0], [0, 1, 2], ["0", "4"],
                                                [0, len(data) + draw("int", 1, 100)], [0.0, 4.0], None))
    elif kind == "dtype":
        entry["dtype"] = draw("choice", DTYPES + (None, 4, ["F32"]))
    elif kind == "shape":
        entry["shape"] = draw("choice", ([-1, 4], [2**64, 0], [2**40, 2**40], [1.5], ["4"], [True], None, 4, [0] * 64,
                                         [2**63] * 3))
    else:
        header[name] = draw("choice", ([], "F32", None, {"dtype": "F32"}, {"shape": [1]}, {}))
    return header, data


def gen_weights(draw: Draw) -> bytes:
    """An adapters.safetensors file: valid, structurally corrupt, or corrupt at the byte level."""
    header, data = header_for(draw, gen_tensors(draw))
    style = draw("choice", ("valid", "valid", "structure", "bytes", "length", "raw"))
    if style == "structure":
        header, data = corrupt_header(draw, header, data)
    raw = json.dumps(header).encode("utf-8", "surrogatepass")
    if style == "raw":
        raw = draw("choice", (b"", b"{", b"not json", b"[" * 100_000, b"\xff\xfe", b"{}" + b" " * 7, b'{"a":'))
    blob = safetensors_bytes(raw, data)
    if style == "length":
        length = draw("choice", (0, 1, len(raw) - 1, len(raw) + 1, len(blob), 2**63, 8 * 10**18, 2**64 - 1, 100_000_001))
        blob = struct.pack("<Q", length) + blob[8:]
    elif style == "bytes":
        for _ in range(draw("int", 1, 3)):
            blob = mutate_bytes(draw, blob, WEIGHTS_INSERTS)
    return blob


# -- one generated adapter directory --------------------------------------------------------------

PICKLES = ("adapters.npz", "adapters.bin", "adapter_model.pt", "model.pkl", "x.ckpt")
RUN_ARGS = ([], ["--fix"], ["--fix"], ["--fix", "--unsafe-fixes"], ["--diff"], ["--fix", "--diff"])


@dataclass
class Example:
    """Everything one generated case writes, and the arguments it runs with."""

    config: bytes
    weights: bytes | None  # None: no weights file
    base_config: bytes | None  # a config.json beside the adapter
    pickles: tuple[str, ...]
    args: list[str]
    output_format: str

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG).write_bytes(self.config)
        if self.weights is not None:
            (directory / WEIGHTS).write_bytes(self.weights)
        if self.base_config is not None:
            (directory / "config.json").write_bytes(self.base_config)
        for name in self.pickles:
            (directory / name).write_bytes(b"\x80\x04K\x01.")

    def judge(self, directory: Path) -> list[str]:
        self.write(directory)
        return judge(directory, self.args, self.output_format, before=self.config)


def gen_example(draw: Draw) -> Example:
    base = None
    if draw("int", 0, 3) == 0:
        base = draw("choice", (b'{"num_hidden_layers": 4}', b'{"num_hidden_layers": 2}', b'{"text_config": {"num_hidden_layers": 8}}',
                               b'{"num_hidden_layers": "4"}', b"[", b"", b'{"num_hidden_layers": 1e999}'))
    return Example(
        config=gen_config_bytes(draw),
        weights=None if draw("int", 0, 9) == 0 else gen_weights(draw),
        base_config=base,
        pickles=tuple(p for p in PICKLES if draw("int", 0, 15) == 0),
        args=list(draw("choice", RUN_ARGS)),
        output_format=draw("choice", FORMATS),
    )


# -- draw adapters ----------------------------------------------------------------------------------


class RandomDraw:
    """``draw`` over a seeded ``random.Random`` (the fuzz bench)."""

    def __init__(self, rng):
        self.rng = rng

    def __call__(self, kind: str, *args: Any) -> Any:
        rng = self.rng
        if kind == "choice":
            return rng.choice(args[0])
        if kind == "int":
            return rng.randint(args[0], args[1])
        if kind == "bool":
            return rng.random() < 0.5
        if kind == "permutation":
            order = list(range(args[0]))
            rng.shuffle(order)
            return order
        if kind == "float":
            return rng.choice((rng.uniform(-1e6, 1e6), rng.random(), rng.expovariate(1e-300), -0.0, 5e-324))
        if kind == "text":
            alphabet = "ab_.:%\n\r\"\\`<>é\u2028\x00\x1b\ud800\U0001f600"
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        raise ValueError(kind)


def hypothesis_draw(data) -> Draw:
    """``draw`` over hypothesis's ``st.data()``, so failures shrink."""
    from hypothesis import strategies as st

    def draw(kind: str, *args: Any) -> Any:
        if kind == "choice":
            return data.draw(st.sampled_from(args[0]))
        if kind == "int":
            return data.draw(st.integers(args[0], args[1]))
        if kind == "bool":
            return data.draw(st.booleans())
        if kind == "permutation":
            return data.draw(st.permutations(range(args[0])))
        if kind == "float":
            return data.draw(st.floats(allow_nan=True, allow_infinity=True))
        if kind == "text":
            return data.draw(st.text(max_size=8))
        raise ValueError(kind)

    return draw
