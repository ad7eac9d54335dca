"""The msgspec header parser is the reference parser, only faster.

``safetensors_fast.parse_header`` may accept a header on its own only when the
reference parser (``safetensors_header``) accepts it with the very same result;
everything else it hands to the reference, so the errors are the reference's
by construction. These tests compare the two on:

- the hostile corpus of tests/test_hostile_safetensors.py, file by file;
- files written by the real writers: ``mlx_lm`` (``mx.save_safetensors``),
  PEFT (``save_pretrained``) and mlx-vlm (``save_trainable_weights``);
- generated headers of those layouts, mutated at the JSON level and at the byte
  level (an always-on run here; ``pytest -m fuzz`` runs tens of thousands).

"The same" is the ``repr`` of the whole ``Header`` (tensor order, record and
number types included) or the same error class and message. The lint reads only
the shapes (``parse_shapes`` / ``read_shapes``, which skip building the records):
they are held to the reference's ``Header.shapes()`` on every input too.
"""

from __future__ import annotations

import json
import math
import os
import struct

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapter_guard import safetensors_fast
from adapter_guard.safetensors_header import DTYPE_BITS, HeaderError, read_header
from adapter_guard.safetensors_header import _parse as reference_parse
from test_hostile_safetensors import HOSTILE


def outcome(parse, *args) -> tuple[str, str]:
    """What a parser made of a header: the Header's repr, or the error's class and message."""
    try:
        return ("accepted", repr(parse(*args)))
    except HeaderError as error:
        return (type(error).__name__, error.message)


def reference_shapes(raw: bytes, file_size: int) -> dict:
    return reference_parse(raw, file_size).shapes()


def reference_read_shapes(path) -> dict:
    return read_header(path).shapes()


def took_the_fast_path(raw: bytes, file_size: int) -> bool:
    return safetensors_fast._parse_common(raw, file_size) is not None


def split(path) -> tuple[bytes, int]:
    """A well-framed file's header bytes and its size."""
    blob = open(path, "rb").read()
    (length,) = struct.unpack("<Q", blob[:8])
    return blob[8 : 8 + length], len(blob)


# -- the hostile corpus -------------------------------------------------------------------------


@pytest.mark.parametrize("weights, message", HOSTILE.values(), ids=HOSTILE.keys())
def test_every_hostile_file_gets_the_reference_answer(tmp_path, weights, message):
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(weights)

    fast = outcome(safetensors_fast.read_header, path)

    assert fast == outcome(read_header, path)
    assert fast[0] == "HeaderError" and message in fast[1]
    assert outcome(safetensors_fast.read_shapes, path) == outcome(reference_read_shapes, path)


def test_unreadable_files_get_the_reference_answer(tmp_path):
    missing = tmp_path / "missing.safetensors"
    for path in (tmp_path, missing):
        assert outcome(safetensors_fast.read_header, path) == outcome(read_header, path)
        assert outcome(safetensors_fast.read_shapes, path) == outcome(reference_read_shapes, path)


# -- real writers -------------------------------------------------------------------------------


def test_mlx_lm_adapters_take_the_fast_path_with_the_reference_result(tmp_path):
    from builders import dora_adapter, gpt_oss_experts_adapter, llama_attention_adapter

    for build in (llama_attention_adapter, dora_adapter, gpt_oss_experts_adapter):
        path = build(tmp_path / build.__name__).adapter_dir / "adapters.safetensors"
        raw, size = split(path)
        assert took_the_fast_path(raw, size), build.__name__
        assert outcome(safetensors_fast.read_header, path) == outcome(read_header, path)
        assert outcome(safetensors_fast.read_shapes, path) == outcome(reference_read_shapes, path)


def test_mlx_vlm_adapters_take_the_fast_path_with_the_reference_result(tmp_path):
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm.tuner.lora import LoRALinear
    from mlx_vlm.trainer.common.utils import save_trainable_weights

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj = LoRALinear.from_base(nn.Linear(16, 16), r=4)
            self.v_proj = LoRALinear.from_base(nn.Linear(16, 8), r=4)

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn = Attention()

    class Tower(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [Layer() for _ in range(3)]

    class LanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = Tower()

    class Vlm(nn.Module):
        def __init__(self):
            super().__init__()
            self.language_model = LanguageModel()

    model = Vlm()
    model.freeze()
    model.unfreeze(keys=["lora_a", "lora_b"])  # what mlx-vlm's trainer leaves trainable
    mx.eval(model.parameters())
    path = tmp_path / "adapters.safetensors"
    save_trainable_weights(model, path)

    raw, size = split(path)
    assert "language_model.model.layers.2.self_attn.v_proj.lora_b" in read_header(path).tensors
    assert took_the_fast_path(raw, size)
    assert outcome(safetensors_fast.read_header, path) == outcome(read_header, path)
    assert outcome(safetensors_fast.read_shapes, path) == outcome(reference_read_shapes, path)


def test_peft_adapters_take_the_fast_path_with_the_reference_result(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=1))
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    model.save_pretrained(tmp_path)
    path = tmp_path / "adapter_model.safetensors"

    raw, size = split(path)
    header = read_header(path)
    assert header.tensors["base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"].shape == (4, 16)
    assert header.tensors["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"].shape == (16, 4)
    assert header.metadata == {"format": "pt"}
    assert took_the_fast_path(raw, size)
    assert outcome(safetensors_fast.read_header, path) == outcome(read_header, path)
    assert outcome(safetensors_fast.read_shapes, path) == outcome(reference_read_shapes, path)


# -- generated and mutated headers ---------------------------------------------------------------

MLX_MODULES = ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj")

#: Tokens that put each JSON value just inside or just outside what the reference accepts.
TOKENS = (
    "0", "-0", "1", "-1", "4", "8", "16", "1.0", "16.0", "1e1", "1E1", "-0.0", "1e999", "NaN", "Infinity",
    "true", "false", "null", '"4"', '"F32"', '"f32"', '"F4"', '"BF16"', '""', "[]", "{}", "[0]", "[0,4]",
    "[4,0]", "[0,0]", "[-4,0]", "[0,4,8]", '[0,"4"]', "[[]]", "[1,1]", "[0,4.0]", "[2,2,2,2,2,2,2,2,2]",
    "[16,8]", "[8,16]", "[-2,-2]", "[-1,-4]", "[-4,0]", "[-8,-4]", "[0,18446744073709551615]", "[18446744073709551615,0]", "[18446744073709551616,0]",
    "[0,18446744073709551616]", "[" + "9" * 30 + ",0]", "[" + "9" * 4301 + ",0]", "[9223372036854775808,0]",
    "[" * 600 + "]" * 600, '{"format":"mlx"}', '{"format":1}', '{"format":null}', '{"a":"b"}',
    '{"format":"mlx","format":"pt"}', "18446744073709551616", "9223372036854775807", "-9223372036854775809",
)
FIELDS = ("dtype", "shape", "data_offsets", "format", "extra", "dtype")
WHITESPACE = (" ", "\t", "\n", "\r", "\r\n  ", "\x0b", "\x0c", "\xa0")
BYTES = (b"\xff", b"\x00", b"\\", b'"', b",", b":", b"{", b"}", b"[", b"]", b"-", b"0", b"9", b"e", b".",
         b"\xed\xa0\x80", b"\xc3\xa9", b"\\u0041", b"\\ud800", b"\x7f", b"\x1f", b" ")


@st.composite
def layout_entries(draw) -> tuple[list[tuple[str, dict]], int]:
    """(name, entry) pairs of an MLX, mlx-vlm or PEFT adapter, and the data size they tile."""
    layout = draw(st.sampled_from(("mlx", "mlx-vlm", "peft", "switch")))
    rank = draw(st.integers(1, 8))
    dtype = draw(st.sampled_from(("F32", "F16", "BF16", "F4", "F8_E4M3", "F64")))
    names_shapes = []
    for layer in range(draw(st.integers(0, 4))):
        for module in draw(st.lists(st.sampled_from(MLX_MODULES), min_size=1, max_size=3, unique=True)):
            if layout == "peft":
                base = f"base_model.model.model.layers.{layer}.{module}"
                names_shapes += [(f"{base}.lora_A.weight", [rank, 16]), (f"{base}.lora_B.weight", [8, rank])]
            elif layout == "switch":
                base = f"model.layers.{layer}.{module}"
                names_shapes += [(f"{base}.lora_a", [2, rank, 16]), (f"{base}.lora_b", [2, 8, rank])]
            else:
                prefix = "language_model.model.layers" if layout == "mlx-vlm" else "model.layers"
                base = f"{prefix}.{layer}.{module}"
                names_shapes += [(f"{base}.lora_a", [16, rank]), (f"{base}.lora_b", [rank, 8])]
    if draw(st.booleans()):
        names_shapes.append(("model.embed_tokens.lora_a", [0, rank]))  # an empty tensor: begin == end
    if draw(st.integers(0, 3)) == 0:
        names_shapes.reverse()  # offsets out of header order (still valid)
    entries, offset = [], 0
    for name, shape in names_shapes:
        size = math.prod(shape) * DTYPE_BITS[dtype] // 8
        entries.append((name, {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}))
        offset += size
    metadata = draw(st.sampled_from(("absent", None, {"format": "mlx"}, {"format": "pt"}, {}, "first")))
    if metadata == "first":  # mx.save_safetensors writes "__metadata__": null first
        entries.insert(0, ("__metadata__", None))
    elif metadata != "absent":
        entries.append(("__metadata__", metadata))
    return entries, offset


def render(members: list[tuple[str, str]], space: str = "") -> str:
    """A JSON object from already-rendered (key, value) pairs: duplicates and odd tokens stay as they are."""
    return "{" + ("," + space).join(f"{json.dumps(key)}:{space}{value}" for key, value in members) + "}"


def rendered(fields: list[tuple[str, str]] | str, space: str = "") -> str:
    return fields if isinstance(fields, str) else render(fields, space)


def render_entry(entry: dict | None) -> list[tuple[str, str]] | str:
    if entry is None:
        return "null"
    return [(key, json.dumps(value, separators=(",", ":"))) for key, value in entry.items()]


@st.composite
def mutated_headers(draw) -> tuple[bytes, int]:
    """A layout header with a few JSON-level and byte-level mutations, and a file size."""
    entries, data_size = draw(layout_entries())
    members = [(name, render_entry(entry)) for name, entry in entries]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(("value", "value", "drop", "duplicate", "entry", "swap", "name")))
        if not members:
            break
        i = draw(st.integers(0, len(members) - 1))
        name, fields = members[i]
        if isinstance(fields, str):  # a null entry: mutate it as an empty object
            fields = []
        if kind == "value":
            key = draw(st.sampled_from(FIELDS))
            token = draw(st.sampled_from(TOKENS))
            fields = [(k, v) for k, v in fields if k != key] + [(key, token)] if draw(st.booleans()) else fields + [(key, token)]
        elif kind == "drop" and fields:
            del fields[draw(st.integers(0, len(fields) - 1))]
        elif kind == "duplicate":
            copied = draw(st.sampled_from([m[1] for m in members]))
            members.insert(draw(st.integers(0, len(members))), (name, copied if isinstance(copied, str) else list(copied)))
        elif kind == "entry":
            fields = draw(st.sampled_from(TOKENS))
        elif kind == "swap" and len(members) > 1:
            j = draw(st.integers(0, len(members) - 1))
            offsets_i = dict(fields).get("data_offsets")
            offsets_j = dict(members[j][1]).get("data_offsets") if not isinstance(members[j][1], str) else None
            if offsets_i and offsets_j:
                members[j] = (members[j][0], [(k, offsets_i if k == "data_offsets" else v) for k, v in members[j][1]])
                fields = [(k, offsets_j if k == "data_offsets" else v) for k, v in fields]
        else:
            name = draw(st.sampled_from(("__metadata__", "", "a.lora_a", "caf\u00e9.lora_a", "x" * 300)))
        members[i] = (name, fields)
    space = draw(st.sampled_from(("", "", " ", "\n  ")))
    text = render([(n, rendered(f, space)) for n, f in members], space)
    text = draw(st.sampled_from(("", "", " ", "\n"))) + text + draw(st.sampled_from(("", "", "  ", "\x00", "{}")))
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(WHITESPACE)) + text[at:]
    raw = text.encode("utf-8", "surrogatepass")
    for _ in range(draw(st.sampled_from((0, 0, 0, 1, 2)))):
        at = draw(st.integers(0, len(raw)))
        cut = draw(st.integers(0, 2))
        raw = raw[:at] + draw(st.sampled_from(BYTES)) + raw[at + cut :]
    slack = draw(st.sampled_from((0, 0, 0, 1, 7, -1, -4, 2**40)))
    file_size = max(8 + len(raw), 8 + len(raw) + data_size + slack)
    return raw, file_size


def assert_same(raw: bytes, file_size: int) -> None:
    fast = outcome(safetensors_fast.parse_header, raw, file_size)
    assert fast == outcome(reference_parse, raw, file_size), (raw[:300], file_size)
    shapes = outcome(safetensors_fast.parse_shapes, raw, file_size)
    assert shapes == outcome(reference_shapes, raw, file_size), (raw[:300], file_size)


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))


@fuzz(400)
@given(mutated_headers())
def test_mutated_headers_get_the_reference_result(case):
    event("fast path" if took_the_fast_path(*case) else "reference parser")  # --hypothesis-show-statistics
    assert_same(*case)


@pytest.mark.fuzz
@fuzz(int(os.environ.get("AG_FAST_FUZZ_EXAMPLES", "40000")))
@given(mutated_headers())
def test_mutated_headers_get_the_reference_result_at_length(case):
    event("fast path" if took_the_fast_path(*case) else "reference parser")
    assert_same(*case)


@settings(max_examples=300, deadline=None)
@given(layout_entries())
def test_valid_layout_headers_take_the_fast_path(case):
    entries, data_size = case
    raw = render([(name, rendered(render_entry(entry))) for name, entry in entries]).encode()
    assert took_the_fast_path(raw, 8 + len(raw) + data_size)
    assert_same(raw, 8 + len(raw) + data_size)


# -- pinned corners (each once found by hand while writing the parser) ---------------------------

CORNERS = {
    "unknown key holding a 5,000-digit number": b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":' + b"9" * 5000 + b"}}",
    "unknown key holding deep nesting": b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":' + b"[" * 5000 + b"]" * 5000 + b"}}",
    "a dimension of 2**64 in an empty tensor": b'{"a":{"dtype":"F32","shape":[18446744073709551616,0],"data_offsets":[0,0]}}',
    "a dimension of 2**64 - 1 in an empty tensor": b'{"a":{"dtype":"F32","shape":[18446744073709551615,0],"data_offsets":[0,0]}}',
    "a float dimension": b'{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}',
    "a repeated tensor keeps its last entry": b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}',
    "a repeated field keeps its last value": b'{"a":{"dtype":"F16","dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
    "metadata with a null format": b'{"__metadata__":{"format":null}}',
    "metadata with a null dtype (found by the fuzz run)": b' {"__metadata__":{"dtype":null}}',
    "a tensor with a null field": b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"format":null}}',
    "metadata with two keys": b'{"__metadata__":{"format":"mlx","x":"y"}}',
    "metadata repeated": b'{"__metadata__":{"format":"mlx"},"__metadata__":{"format":"pt"}}',
    "metadata null (as mx.save_safetensors writes it)": b'{"__metadata__":null,"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
    "a null tensor entry": b'{"a":null}',
    "an escaped key": b'{"\\u0061":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
    "an escaped metadata key": b'{"\\u005f_metadata__":{"format":"mlx"}}',
    "a lone surrogate escape": b'{"\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
    "a control character in a name": b'{"a\x01":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
    "DEL in a name": b'{"a\x7f":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
    "overlapping tensors out of order": b'{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
    "two negative dimensions with the right product": b'{"a":{"dtype":"F32","shape":[-1,-2],"data_offsets":[0,8]}}',
    "a negative begin with the right size": b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}',
    "nine dimensions": b'{"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,4],"data_offsets":[0,4]}}',
    "a tensor named format": b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"format":"mlx"}}',
    "vertical tab as whitespace": b'{"a":\x0b{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
}


@pytest.mark.parametrize("raw", CORNERS.values(), ids=CORNERS.keys())
def test_pinned_corners_get_the_reference_result(raw):
    assert_same(raw, 8 + len(raw) + 8)
