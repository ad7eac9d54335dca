"""The safetensors header reader: exact on real files, bounded and calm on hostile ones.

The safetensors library is the oracle: every file it writes must read back with
its shapes, every file it accepts must be accepted with the same shapes, and the
corrupt files below are checked against its verdict too.
"""

from __future__ import annotations

import json
import math
import os
import struct
import threading
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from adapter_guard.safetensors_header import (
    DTYPE_BITS,
    MAX_HEADER_BYTES,
    Header,
    HeaderError,
    HeaderUnreadable,
    TensorInfo,
    read_header,
)

MiB = 1 << 20


# -- helpers ----------------------------------------------------------------------


def frame(header: dict | bytes, data: bytes = b"", *, length: int | None = None) -> bytes:
    """A safetensors file by hand: the 8-byte length, the header, the data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def entry(dtype: str, shape: list, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def library_shapes(path) -> dict[str, tuple[int, ...]]:
    with safe_open(str(path), "numpy") as f:
        return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}


def library_accepts(path) -> bool:
    try:
        library_shapes(path)
    except SafetensorError:
        return False
    return True


def read_or_error(path) -> Header | HeaderError:
    """The only two outcomes read_header may have; anything else fails the test."""
    try:
        return read_header(path)
    except HeaderError as error:
        return error


# -- files the library writes -------------------------------------------------------


def test_shapes_dtypes_offsets_and_metadata_match_a_library_written_file(tmp_path):
    arrays = {
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
        "f16": np.ones(5, np.float16),
        "f64": np.ones((2, 1, 3), np.float64),
        "i8": np.arange(7, dtype=np.int8),
        "u8": np.arange(3, dtype=np.uint8),
        "i16": np.ones(2, np.int16),
        "u16": np.ones(2, np.uint16),
        "i32": np.ones(2, np.int32),
        "u32": np.ones(2, np.uint32),
        "i64": np.ones(2, np.int64),
        "u64": np.ones(2, np.uint64),
        "bool": np.array([[True, False]]),
        "c64": np.ones(3, np.complex64),
        "scalar": np.array(1.5, np.float32),
        "empty": np.zeros((0, 7), np.float32),
        "empty_3d": np.zeros((4, 0, 2), np.int8),
    }
    path = tmp_path / "adapters.safetensors"
    save_file(arrays, str(path), metadata={"format": "mlx"})

    header = read_header(path)

    assert header.shapes() == library_shapes(path)
    assert header.metadata == {"format": "mlx"}
    with safe_open(str(path), "numpy") as f:
        assert {name: info.dtype for name, info in header.tensors.items()} == {
            name: f.get_slice(name).get_dtype() for name in f.keys()
        }
    data = path.read_bytes()[8 + header.header_size :]
    for name, array in arrays.items():
        info = header.tensors[name]
        assert data[info.begin : info.end] == array.tobytes()


def test_zero_dimensional_and_empty_tensors_keep_their_shapes(tmp_path):
    path = tmp_path / "a.safetensors"
    save_file({"scalar": np.array(3, np.int32), "empty": np.zeros((0, 4), np.float16)}, str(path))

    assert read_header(path).shapes() == {"scalar": (), "empty": (0, 4)}


def test_header_and_data_sizes_describe_the_file(tmp_path):
    path = tmp_path / "a.safetensors"
    save_file({"a": np.zeros((4, 8), np.float32)}, str(path))
    (length,) = struct.unpack("<Q", path.read_bytes()[:8])

    header = read_header(path)

    assert (header.header_size, header.file_size, header.data_size) == (length, path.stat().st_size, 128)


def test_ten_thousand_tensors_read_like_the_library(tmp_path):
    path = tmp_path / "a.safetensors"
    save_file({f"model.layers.{i}.q_proj.lora_a": np.zeros((2, i % 5), np.float16) for i in range(10_000)}, str(path))

    header = read_header(path)

    assert len(header.tensors) == 10_000
    assert header.shapes() == library_shapes(path)


def test_tensor_info_is_a_small_immutable_record(tmp_path):
    path = tmp_path / "a.safetensors"
    save_file({"a": np.zeros((2, 3), np.float32)}, str(path))

    info = read_header(path).tensors["a"]

    assert info == TensorInfo("F32", (2, 3), 0, 24)
    assert (info.dtype, info.shape, info.begin, info.end) == ("F32", (2, 3), 0, 24)
    with pytest.raises(AttributeError):
        info.shape = (1,)


@pytest.mark.parametrize("dtype", sorted(DTYPE_BITS))
def test_every_format_dtype_has_the_library_s_element_size(tmp_path, dtype):
    # Eight elements fill a whole number of bytes for every width, 4-bit F4 included.
    size = 8 * DTYPE_BITS[dtype] // 8
    path = tmp_path / "a.safetensors"
    path.write_bytes(frame({"t": entry(dtype, [2, 4], 0, size)}, bytes(size)))

    assert read_header(path).shapes() == {"t": (2, 4)} == library_shapes(path)


def test_a_sparse_file_over_1_gb_is_read_through_its_header_only(tmp_path, monkeypatch):
    tensor_bytes = 4 * MiB
    header = {
        f"model.layers.{i}.mlp.lora_a": entry("F32", [1024, 1024], i * tensor_bytes, (i + 1) * tensor_bytes)
        for i in range(300)
    }
    raw = frame(header)
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(raw)
    os.truncate(huge, len(raw) + 300 * tensor_bytes)
    assert huge.stat().st_size > 1 << 30

    bytes_read = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: bytes_read.append(n) or real_read(fd, n))
    monkeypatch.setattr(os, "lseek", None)  # no seeking into the data region either
    tracemalloc.start()
    try:
        result = read_header(huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    monkeypatch.undo()

    assert sum(bytes_read) == len(raw) == 8 + result.header_size
    assert peak < 32 * result.header_size
    assert result.shapes() == library_shapes(huge)


# -- corrupt files: a HeaderError that says what is wrong, in one line ------------

_OK = entry("U8", [4], 0, 4)
_DEEP = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
_MANY_THEN_BAD = {**{f"t{i}": entry("U8", [1], i, i + 1) for i in range(5000)}, "last": entry("U8", [-1], 0, 0)}


def case(name: str, content: bytes, message: str):
    return pytest.param(content, message, id=name)


def with_entry(data_size: int, **fields) -> bytes:
    """A one-tensor file whose entry is _OK with ``fields`` replaced."""
    return frame({"a": {**_OK, **fields}}, bytes(data_size))


CORRUPT = [
    # The frame: length prefix and header bytes.
    case("empty-file", b"", "file is empty"),
    case("shorter-than-8-bytes", b"\x02\x00\x00", "file is 3 bytes, shorter than the 8-byte header length"),
    case("header-length-0", frame(b"", bytes(16), length=0), "header length is 0"),
    case("8-EB-header", frame(b"{}", length=2**63),
         "header length 9223372036854775808 exceeds the file size (10 bytes)"),
    case("max-u64-header", frame(b"{}", length=2**64 - 1), "exceeds the file size"),
    case("header-past-eof", frame(b"{}", length=3), "header length 3 exceeds the file size (10 bytes)"),
    # The JSON document.
    case("not-utf8", frame(b'{"\xff": {}}'), "header is not UTF-8 (invalid byte at file offset 10)"),
    case("utf8-bom", frame(b"\xef\xbb\xbf{}"), "header is not valid JSON: Unexpected UTF-8 BOM"),
    case("truncated-json", frame(b'{"a": {"dtype"'), "header is not valid JSON"),
    case("json-array", frame(b"[]"), "header is a JSON array, not an object"),
    case("json-number", frame(b"42"), "header is a JSON number, not an object"),
    case("json-string", frame(b'"{}"'), "header is a JSON string, not an object"),
    case("json-null", frame(b"null"), "header is a JSON null, not an object"),
    case("deep-nesting", frame(_DEEP), "header is not valid JSON: nested too deeply"),
    case("5000-digit-number", frame(b'{"a": {"dtype": "U8", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 0]}}'),
         "header is not valid JSON: a number is too long"),
    # Entries.
    case("entry-array", frame({"a": [1, 2]}), 'tensor "a" is a JSON array, not an object'),
    case("entry-string", frame({"a": "U8"}), 'tensor "a" is a JSON string, not an object'),
    case("no-dtype", frame({"a": {"shape": [1], "data_offsets": [0, 1]}}, b"\0"), "tensor \"a\" has no 'dtype'"),
    case("no-shape", frame({"a": {"dtype": "U8", "data_offsets": [0, 1]}}, b"\0"), "tensor \"a\" has no 'shape'"),
    case("no-offsets", frame({"a": {"dtype": "U8", "shape": [1]}}, b"\0"), "tensor \"a\" has no 'data_offsets'"),
    # dtype.
    case("unknown-dtype", frame({"a": entry("F128", [1], 0, 16)}, bytes(16)), 'tensor "a" has unknown dtype "F128"'),
    case("lowercase-dtype", with_entry(4, dtype="u8"), 'has unknown dtype "u8"'),
    case("dtype-number", with_entry(4, dtype=32), 'tensor "a" has unknown dtype 32'),
    case("dtype-list", with_entry(4, dtype=["U8"]), 'has unknown dtype ["U8"]'),
    # shape.
    case("shape-number", with_entry(4, shape=4), "has shape 4, not a list of non-negative integers"),
    case("shape-string", with_entry(4, shape="4"), 'has shape "4", not a list'),
    case("negative-dim", with_entry(4, shape=[-4]), "has shape [-4], not a list"),
    case("negative-dim-pair", with_entry(4, shape=[2, -2]), "has shape [2, -2], not a list"),
    case("float-dim", with_entry(4, shape=[4.0]), "has shape [4.0], not a list"),
    case("bool-dim", with_entry(4, shape=[True, 4]), "has shape [true, 4], not a list"),
    case("nested-dim", with_entry(4, shape=[[4]]), "has shape [[4]], not a list"),
    case("null-dim", with_entry(4, shape=[None]), "has shape [null], not a list"),
    case("dim-above-usize", frame({"a": entry("U8", [0, 2**64], 0, 0)}), "with a dimension above 2**64 - 1"),
    case("huge-dims", with_entry(4, shape=[2**62] * 3),
         "which needs more bytes than the whole data region, but data_offsets [0, 4] hold 4 bytes"),
    # data_offsets.
    case("offsets-string", with_entry(4, data_offsets="0,4"), 'has data_offsets "0,4", not [begin, end]'),
    case("three-offsets", with_entry(4, data_offsets=[0, 2, 4]), "has data_offsets [0, 2, 4], not [begin, end]"),
    case("one-offset", with_entry(4, data_offsets=[4]), "has data_offsets [4], not [begin, end]"),
    case("float-offset", with_entry(4, data_offsets=[0, 4.0]), "has data_offsets [0, 4.0], not [begin, end]"),
    case("bool-offset", with_entry(4, data_offsets=[False, 4]), "has data_offsets [false, 4], not [begin, end]"),
    case("negative-offset", with_entry(4, data_offsets=[-4, 0]), "has data_offsets [-4, 0], not 0 <= begin <= end"),
    case("begin-after-end", with_entry(4, data_offsets=[4, 0]), "has data_offsets [4, 0], not 0 <= begin <= end"),
    case("past-the-end", frame({"a": entry("U8", [8], 0, 8)}, bytes(4)),
         'tensor "a" has data_offsets [0, 8] past the end of the data region (4 bytes)'),
    case("8-EB-offset", frame({"a": entry("U8", [2**63], 0, 2**63)}, bytes(4)),
         "past the end of the data region (4 bytes)"),
    case("size-mismatch", frame({"a": entry("F32", [2], 0, 4)}, bytes(4)),
         'tensor "a" has shape [2] of F32, which needs 8 bytes, but data_offsets [0, 4] hold 4 bytes'),
    case("f4-half-byte", frame({"a": entry("F4", [3], 0, 2)}, bytes(2)),
         "which needs 12 bits, not a whole number of bytes"),
    # Ranges against each other.
    case("overlap", frame({"a": entry("U8", [8], 0, 8), "b": entry("U8", [8], 4, 12)}, bytes(12)),
         'tensors "a" [0, 8] and "b" [4, 12] overlap'),
    case("overlap-out-of-order", frame({"b": entry("U8", [8], 4, 12), "a": entry("U8", [8], 0, 8)}, bytes(12)),
         'tensors "a" [0, 8] and "b" [4, 12] overlap'),
    case("same-range", frame({"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 0, 4)}, bytes(4)),
         'tensors "a" [0, 4] and "b" [0, 4] overlap'),
    # __metadata__.
    case("metadata-array", frame({"__metadata__": ["mlx"]}), "__metadata__ is a JSON array, not an object of strings"),
    case("metadata-number", frame({"__metadata__": 1}), "__metadata__ is a JSON number"),
    case("metadata-number-value", frame({"__metadata__": {"step": 1}}),
         '__metadata__ "step" is a JSON number, not a string'),
    case("metadata-null-value", frame({"__metadata__": {"k": None}}), '__metadata__ "k" is a JSON null, not a string'),
    # Strings that could not be printed, names that could break a one-line message.
    case("metadata-surrogate", frame(b'{"__metadata__": {"k": "\\udc00"}}'),
         '__metadata__ "k" value contains an unpaired surrogate'),
    case("name-surrogate", frame(b'{"a\\ud800": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}'),
         'tensor name "a\\ud800" contains an unpaired surrogate'),
    case("newline-in-name", frame({"evil\nname": [1]}), 'tensor "evil\\nname" is a JSON array'),
    case("long-name", frame({"x" * 10_000: [1]}), 'tensor "' + "x" * 60 + '..." is a JSON array'),
    case("bad-after-5000-good", frame(_MANY_THEN_BAD, bytes(5000)), 'tensor "last" has shape [-1]'),
]


@pytest.mark.parametrize(("content", "message"), CORRUPT)
def test_a_corrupt_file_is_a_header_error_that_says_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(content)

    with pytest.raises(HeaderError) as caught:
        read_header(path)

    assert message in caught.value.message
    assert "\n" not in caught.value.message and len(caught.value.message) < 300
    assert str(caught.value) == caught.value.message


@pytest.mark.parametrize(("content", "message"), CORRUPT)
def test_the_library_rejects_every_corrupt_file_too(tmp_path, content, message):
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(content)

    assert not library_accepts(path)


def test_a_shape_of_200_000_huge_dims_is_refused_in_linear_time(tmp_path):
    # The element count is clamped as it is multiplied. Unclamped, this product
    # grows to 12.8 million bits one multiplication at a time: about a minute
    # here, against some 50 ms clamped, so the bound below has room both ways.
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(frame({"a": entry("U8", [2**64 - 1] * 200_000, 0, 4)}, bytes(4)))

    started = time.process_time()
    with pytest.raises(HeaderError, match="needs more bytes than the whole data region"):
        read_header(path)
    assert time.process_time() - started < 5
    assert not library_accepts(path)


def test_a_header_above_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(frame(b"{}", length=MAX_HEADER_BYTES + 1))
    os.truncate(path, 8 + MAX_HEADER_BYTES + 1)  # sparse: the length fits the file
    bytes_read = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: bytes_read.append(n) or real_read(fd, n))

    with pytest.raises(HeaderError, match=f"header length {MAX_HEADER_BYTES + 1} exceeds adapter-guard's {MAX_HEADER_BYTES}-byte limit"):
        read_header(path)
    assert bytes_read == [8]
    monkeypatch.undo()
    assert not library_accepts(path)


def test_the_limit_holds_the_largest_real_adapter_header_with_room_to_spare():
    # PEFT "all-linear" LoRA on every expert of a 61-layer, 384-expert MoE (Kimi K2's shape),
    # the longest names and widest offsets a real adapter writes: about 140,000 tensors.
    name = "base_model.model.model.layers.60.mlp.experts.383.down_proj.lora_A.weight"
    entry = {name: {"dtype": "BF16", "shape": [16, 7168], "data_offsets": [10**11, 10**11 + 229376]}}
    per_tensor = len(json.dumps(entry, separators=(",", ":")))  # compact, as the Rust library writes
    assert 61 * 384 * 3 * 2 * per_tensor < MAX_HEADER_BYTES * 2 / 3


# -- unusual files that are still valid -------------------------------------------

UNUSUAL = [
    # (header, data, shapes we read, does the library accept it)
    pytest.param({"a": entry("U8", [2], 2, 4)}, bytes(4), {"a": (2,)}, False, id="gap-before-a-tensor"),
    pytest.param({"a": entry("U8", [2], 0, 2)}, bytes(4), {"a": (2,)}, False, id="trailing-bytes"),
    pytest.param({"b": entry("U8", [2], 2, 4), "a": entry("U8", [2], 0, 2)}, bytes(4), {"b": (2,), "a": (2,)}, True,
                 id="offsets-out-of-header-order"),
    pytest.param({"a": {**entry("U8", [2], 0, 2), "note": [[1], {"x": None}]}}, bytes(2), {"a": (2,)}, True,
                 id="unknown-keys-in-entry"),
    pytest.param({"__metadata__": None, "a": entry("U8", [2], 0, 2)}, bytes(2), {"a": (2,)}, True, id="null-metadata"),
    pytest.param({"__metadata__": {}}, b"", {}, True, id="no-tensors"),
    pytest.param({"e": entry("F32", [0, 3], 0, 0), "a": entry("U8", [2], 0, 2), "f": entry("I64", [5, 0], 2, 2)},
                 bytes(2), {"e": (0, 3), "a": (2,), "f": (5, 0)}, True, id="empty-tensors-share-offsets"),
    pytest.param({"": entry("U8", [1], 0, 1)}, bytes(1), {"": (1,)}, True, id="empty-name"),
    pytest.param({"a": entry("F4", [2, 3], 0, 3)}, bytes(3), {"a": (2, 3)}, True, id="f4-whole-bytes"),
    pytest.param({"a": entry("F6_E2M3", [4], 0, 3)}, bytes(3), {"a": (4,)}, True, id="f6-whole-bytes"),
]


@pytest.mark.parametrize(("header", "data", "shapes", "library_agrees"), UNUSUAL)
def test_an_unusual_but_valid_file_is_read(tmp_path, header, data, shapes, library_agrees):
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(frame(header, data))

    assert read_header(path).shapes() == shapes
    assert library_accepts(path) == library_agrees


def test_whitespace_around_the_header_json_is_fine(tmp_path):
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(frame(b'  {"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}   ', b"\0"))

    assert read_header(path).shapes() == {"a": (1,)} == library_shapes(path)


def test_a_repeated_tensor_name_keeps_its_last_entry_like_the_library(tmp_path):
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(frame(b'{"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},'
                           b' "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}', bytes(4)))

    assert read_header(path).shapes() == {"a": (4,)} == library_shapes(path)


def test_an_entry_written_as_an_array_is_refused_although_the_library_accepts_it(tmp_path):
    # serde reads a struct from a sequence; the format (and mlx) need an object.
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(frame({"a": ["U8", [2], [0, 2]]}, bytes(2)))

    with pytest.raises(HeaderError, match='tensor "a" is a JSON array, not an object'):
        read_header(path)
    assert library_accepts(path)


# -- files that cannot be read at all --------------------------------------------


def test_a_missing_file_is_unreadable_with_its_os_error(tmp_path):
    with pytest.raises(HeaderUnreadable, match="cannot open: no such file or directory") as caught:
        read_header(tmp_path / "adapters.safetensors")

    assert isinstance(caught.value.os_error, FileNotFoundError)


def test_a_directory_is_unreadable(tmp_path):
    with pytest.raises(HeaderUnreadable, match="cannot read: a directory"):
        read_header(tmp_path)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "adapters.safetensors"
    os.mkfifo(fifo)  # a plain open() would wait forever for a writer
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(read_or_error(fifo)), daemon=True)

    reader.start()
    reader.join(timeout=10)

    assert not reader.is_alive(), "read_header blocked on a FIFO"
    assert isinstance(outcome[0], HeaderUnreadable)
    assert outcome[0].message == "cannot read: not a regular file"


def test_permission_denied_is_unreadable(tmp_path, monkeypatch):
    # Simulated: these tests may run as root, who can read a chmod 000 file.
    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", deny)

    with pytest.raises(HeaderUnreadable, match="cannot open: permission denied") as caught:
        read_header(tmp_path / "adapters.safetensors")
    assert isinstance(caught.value.os_error, PermissionError)


def test_an_io_error_while_reading_is_unreadable(tmp_path, monkeypatch):
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(frame({"a": _OK}, bytes(4)))

    def fail(fd, n):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "read", fail)

    with pytest.raises(HeaderUnreadable, match="cannot read: input/output error"):
        read_header(path)


def test_short_reads_are_completed(tmp_path, monkeypatch):
    path = tmp_path / "adapters.safetensors"
    save_file({f"t{i}": np.zeros((i, 2), np.float32) for i in range(50)}, str(path))
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: real_read(fd, min(n, 7)))

    assert read_header(path).shapes() == library_shapes(path)


def test_a_file_that_shrinks_while_read_is_a_header_error(tmp_path, monkeypatch):
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(frame({"a": _OK}, bytes(4)))
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: real_read(fd, n) if n == 8 else b"")

    with pytest.raises(HeaderError, match="file ended after 0 of"):
        read_header(path)


# -- memory -------------------------------------------------------------------------


def peak_allocation(path) -> int:
    tracemalloc.start()
    try:
        read_or_error(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_absurd_header_length_allocates_nothing(tmp_path):
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(frame(b"{}", length=2**63))

    assert peak_allocation(path) < 64 * 1024


@pytest.mark.parametrize(
    "element",
    [b"{}", b"[]", b"0", b"300", b'"ab"', b"1.5", b'{"dtype": "U8"}'],
    ids=["empty-objects", "empty-arrays", "zeros", "ints", "short-strings", "floats", "partial-entries"],
)
def test_parsing_stays_under_32_times_the_header_size(tmp_path, element):
    raw = b'{"a": [' + b",".join([element] * (200_000 // (len(element) + 1))) + b"]}"
    path = tmp_path / "adapters.safetensors"
    path.write_bytes(frame(raw))

    assert peak_allocation(path) < 32 * len(raw)


# -- properties: a Header or a HeaderError, never anything else -------------------

# Built once by the library itself; every mutation below starts from these bytes.
_SEED_ARRAYS = {
    "model.layers.0.self_attn.q_proj.lora_a": np.ones((8, 2), np.float32),
    "model.layers.0.self_attn.q_proj.lora_b": np.ones((2, 8), np.float16),
    "model.layers.0.mlp.experts.up_proj.lora_a": np.ones((2, 2, 4), np.int8),
    "model.layers.0.self_attn.q_proj.m": np.ones(3, np.uint8),
    "scalar": np.array(1, np.int64),
}


@pytest.fixture(scope="module")
def seed_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("seed") / "adapters.safetensors"
    save_file(_SEED_ARRAYS, str(path), metadata={"format": "mlx"})
    return path.read_bytes()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """One file path reused by every example (hypothesis runs them in sequence)."""
    return tmp_path_factory.mktemp("scratch") / "adapters.safetensors"


def check_outcome(path, outcome: Header | HeaderError) -> None:
    """The properties every read must have, whatever the file held.

    An accepted header describes tensors that fit the data region without
    overlapping, each exactly as long as its shape and dtype say. And whatever
    the library accepts, the reader accepts with the same shapes. (The converse
    does not hold byte for byte: gaps, "-0", NaN or deep nesting in ignored keys;
    it is checked on generated headers only.)
    """
    assert isinstance(outcome, (Header, HeaderError))
    if isinstance(outcome, Header):
        spans = []
        for info in outcome.tensors.values():
            assert all(type(dim) is int and dim >= 0 for dim in info.shape)
            assert 0 <= info.begin <= info.end <= outcome.data_size
            assert (info.end - info.begin) * 8 == math.prod(info.shape) * DTYPE_BITS[info.dtype]
            if info.begin != info.end:
                spans.append((info.begin, info.end))
        spans.sort()
        assert all(end <= next_begin for (_, end), (next_begin, _) in zip(spans, spans[1:]))
    if library_accepts(path):
        assert isinstance(outcome, Header), outcome.message
        assert outcome.shapes() == library_shapes(path)


@settings(max_examples=300, deadline=None)
@given(content=st.binary(max_size=600))
def test_arbitrary_bytes_give_a_header_or_a_header_error(scratch, content):
    scratch.write_bytes(content)

    check_outcome(scratch, read_or_error(scratch))


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=400), trailing=st.binary(max_size=64))
def test_arbitrary_header_bytes_with_a_fitting_length_give_a_header_or_a_header_error(scratch, payload, trailing):
    scratch.write_bytes(frame(payload, trailing))

    check_outcome(scratch, read_or_error(scratch))


mutation = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 2000)),
    st.tuples(st.just("flip"), st.integers(0, 2000), st.integers(0, 255)),
    st.tuples(st.just("length"), st.integers(0, 2**64 - 1)),
    st.tuples(st.just("length-delta"), st.integers(-64, 64)),
    st.tuples(st.just("insert"), st.integers(0, 2000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 2000), st.integers(1, 16)),
)


def mutate(content: bytes, steps) -> bytes:
    data = bytearray(content)
    for step in steps:
        kind, *args = step
        if kind == "truncate":
            del data[args[0] :]
        elif kind == "flip" and data:
            data[args[0] % len(data)] = args[1]
        elif kind == "length" and len(data) >= 8:
            data[:8] = struct.pack("<Q", args[0])
        elif kind == "length-delta" and len(data) >= 8:
            data[:8] = struct.pack("<Q", (struct.unpack("<Q", data[:8])[0] + args[0]) % 2**64)
        elif kind == "insert":
            data[args[0] : args[0]] = args[1]
        elif kind == "delete":
            del data[args[0] : args[0] + args[1]]
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(mutation, min_size=1, max_size=4))
def test_mutations_of_a_valid_file_give_a_header_or_a_header_error(scratch, seed_bytes, steps):
    scratch.write_bytes(mutate(seed_bytes, steps))

    check_outcome(scratch, read_or_error(scratch))


json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
json_value = st.recursive(
    json_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def headers(draw) -> tuple[dict, int]:
    """A valid header and its data size, then up to three fields broken at random."""
    tensors, offset = {}, 0
    for name in draw(st.lists(st.text(max_size=6), min_size=1, max_size=5, unique=True)):
        dtype = draw(st.sampled_from(sorted(DTYPE_BITS)))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        if math.prod(shape) * DTYPE_BITS[dtype] % 8:
            shape.append(4)  # sub-byte dtypes fill whole bytes in fours
        size = math.prod(shape) * DTYPE_BITS[dtype] // 8
        tensors[name] = entry(dtype, shape, offset, offset + size)
        offset += size
    header = dict(draw(st.permutations(list(tensors.items()))))
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2))
    data_size = offset + draw(st.sampled_from([0, 0, 0, 1, 3]))

    for _ in range(draw(st.integers(0, 3))):
        if not header:
            break
        name = draw(st.sampled_from(sorted(header)))
        target = header[name]
        change = draw(st.sampled_from(["field", "entry", "offset", "shift", "dim", "drop", "extra", "data"]))
        if change == "entry" or type(target) is not dict:
            header[name] = draw(json_scalar | json_value)
        elif change == "field":
            target[draw(st.sampled_from(["dtype", "shape", "data_offsets"]))] = draw(json_scalar | json_value)
        elif change == "offset" and type(target.get("data_offsets")) is list and target["data_offsets"]:
            offsets = target["data_offsets"]
            index = draw(st.integers(0, len(offsets) - 1))
            if type(offsets[index]) is int:
                offsets[index] += draw(st.integers(-3, 3))
        elif change == "shift" and type(target.get("data_offsets")) is list:
            delta = draw(st.integers(-3, 3))
            target["data_offsets"] = [o + delta if type(o) is int else o for o in target["data_offsets"]]
        elif change == "dim" and type(target.get("shape")) is list and target["shape"]:
            shape = target["shape"]
            index = draw(st.integers(0, len(shape) - 1))
            if type(shape[index]) is int:
                shape[index] += draw(st.sampled_from([-5, -1, 1, 2**64]))
        elif change == "drop" and target:
            del target[draw(st.sampled_from(sorted(target)))]
        elif change == "extra":
            target[draw(st.text(max_size=4))] = draw(json_value)
        elif change == "data":
            data_size = draw(st.integers(0, data_size + 4))
    return header, data_size


def tiles_the_data_region(header: Header) -> bool:
    """The library's stricter rule: ranges in order, back to back, from 0 to the end."""
    position = 0
    for begin, end in sorted((info.begin, info.end) for info in header.tensors.values()):
        if begin != position:
            return False
        position = end
    return position == header.data_size


@settings(max_examples=300, deadline=None)
@given(generated=headers())
def test_generated_headers_get_the_library_s_verdict(scratch, generated):
    header, data_size = generated
    scratch.write_bytes(frame(header, bytes(data_size)))

    outcome = read_or_error(scratch)

    check_outcome(scratch, outcome)
    if isinstance(outcome, Header) and tiles_the_data_region(outcome):
        assert library_accepts(scratch)
