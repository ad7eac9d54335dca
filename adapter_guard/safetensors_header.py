"""Read the header of a safetensors file, and nothing else.

A safetensors file is 8 bytes of little-endian header length ``N``, then ``N``
bytes of UTF-8 JSON, then the tensor data::

    {"<name>": {"dtype": "F32", "shape": [16, 8], "data_offsets": [0, 512]},
     "__metadata__": {"format": "mlx"}}

The lint path needs names, dtypes and shapes, so :func:`read_header` opens the
file, reads ``8 + N`` bytes, parses the JSON and validates every entry in one
loop. It never reads, maps or seeks into the data region, so a sparse 1 GB
adapter costs the same as a 1 kB one.

Why not ``safetensors.safe_open`` (a core dependency): it hands shapes back
only through a framework (``"numpy"`` imports numpy, which the core does not
depend on; ``"mlx"`` is banned on the lint path), it is no faster on an adapter
header (both about 250 us for 256 tensors), it refuses files mlx loads (gaps
between tensors, trailing bytes), and its errors do not name the tensor at
fault. The tests use it as the oracle for every file it accepts.

Accepted is what the format accepts, with one deliberate difference: tensors
need not tile the data region. Gaps and trailing bytes are allowed, because
``mx.load`` reads such files; the Rust library refuses them. As in the library,
unknown keys inside a tensor entry are ignored, a repeated tensor name keeps its
last entry, and a string holding an unpaired surrogate escape (``"\\ud800"``)
is refused (it could not be printed as UTF-8).

Memory: the file size never matters, and a header length above
:data:`MAX_HEADER_BYTES` is refused before anything is read, so the read itself
allocates exactly ``N`` bytes. Decoding and ``json.loads`` then build Python
objects in proportion to ``N``: a real adapter header peaks at about 8 x N, the
most wasteful hostile JSON (a long array of empty objects) at about 26 x N, and
the tests hold every shape under 32 x N. Nothing is ever sized by a shape or an
offset value. At the format's 100 MB limit that would be 2.6 GB; at
:data:`MAX_HEADER_BYTES` (32 MiB, far above any real adapter) it is 870 MB.
"""

from __future__ import annotations

import json
import os
import stat
from collections import namedtuple
from collections.abc import Callable

from .record import Record

#: The largest header read: 32 MiB, a third of the format's own 100 MB
#: (``MAX_HEADER_SIZE`` in the Rust crate). Real adapter headers take about 110
#: to 150 bytes per tensor: 256 tensors are 28 kB, and the largest real layout
#: known (PEFT LoRA on every expert of a 384-expert, 61-layer MoE, 140,000
#: tensors) about 21 MB. Parsing takes up to 26 x N of memory (bench/header_rss.py:
#: 870 MB at this limit, 2.6 GB at the format's), per worker process.
MAX_HEADER_BYTES = 32 * 1024 * 1024

#: Bits per element for every dtype the safetensors format defines (0.8:
#: ``Dtype::bitsize``). ``F4`` and the ``F6`` types are packed below one byte.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}

# Dimensions and offsets are ``usize`` in the format.
_MAX_USIZE = 2**64 - 1
#: The little-endian u64 that opens every file: the header length.
LENGTH_BYTES = 8
_LENGTH_BYTES = LENGTH_BYTES
_tuple_new = tuple.__new__


class HeaderError(Exception):
    """The file is not a valid safetensors file. ``message`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HeaderUnreadable(HeaderError):
    """The file could not be opened or read at all.

    ``os_error`` is the underlying error (``FileNotFoundError`` for a missing
    file, ``PermissionError``, ...), or None for a path that is not a regular
    file (a directory, a FIFO, a device).
    """

    def __init__(self, message: str, os_error: OSError | None = None) -> None:
        super().__init__(message)
        self.os_error = os_error


class TensorInfo(namedtuple("TensorInfo", ["dtype", "shape", "begin", "end"])):
    """One header entry: ``dtype`` (str), ``shape`` (tuple of int), and ``begin`` and ``end``,
    offsets into the data region, which starts at 8 + header_size.

    A named tuple, not a dataclass: thousands are built per file on the lint path,
    and a frozen dataclass costs three times as much (and ``collections.namedtuple``,
    not ``typing.NamedTuple``, which would import ``typing``)."""

    __slots__ = ()


class Header(Record):
    __slots__ = ("tensors", "metadata", "header_size", "file_size")

    def __init__(self, tensors: dict[str, TensorInfo], metadata: dict[str, str] | None, header_size: int,
                 file_size: int) -> None:
        self.tensors = tensors  # in header order
        self.metadata = metadata  # ``__metadata__``, None when absent or null
        self.header_size = header_size  # N, the length of the JSON text
        self.file_size = file_size

    @property
    def data_size(self) -> int:
        return self.file_size - _LENGTH_BYTES - self.header_size

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: info.shape for name, info in self.tensors.items()}


def read_header(path: str | os.PathLike[str], *, parse: Callable[[bytes, int], Header] | None = None) -> Header:
    """Read and validate the header of the safetensors file at ``path``.

    ``parse`` replaces the parser of the header bytes (``safetensors_fast``
    passes its own, which gives the same results); the reading is the same.

    Raises :class:`HeaderError` for every bad file, and its subclass
    :class:`HeaderUnreadable` when the file cannot be opened or read (missing,
    no permission, a directory). No other exception escapes for any file content.
    """
    try:
        # O_NONBLOCK: opening a FIFO planted as adapters.safetensors must not hang.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise HeaderUnreadable(f"cannot open: {_reason(error)}", error) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise HeaderUnreadable(f"cannot read: {kind}")
        file_size = st.st_size
        check_file_size(file_size)
        header_size = header_length(_read_exactly(fd, _LENGTH_BYTES), file_size)
        raw = _read_exactly(fd, header_size)
    except OSError as error:
        raise HeaderUnreadable(f"cannot read: {_reason(error)}", error) from None
    finally:
        os.close(fd)
    return (parse or _parse)(raw, file_size)


# The three steps of a header read, public for readers that do not hold the
# file (Git LFS: the bytes come from a server, the size from the pointer). Each
# applies exactly the bounds and messages of :func:`read_header`.


def check_file_size(file_size: int) -> None:
    """Refuse a file too short to hold the 8-byte header length."""
    if file_size < _LENGTH_BYTES:
        if file_size == 0:
            raise HeaderError("file is empty")
        raise HeaderError(f"file is {file_size} bytes, shorter than the 8-byte header length")


def header_length(prefix: bytes, file_size: int) -> int:
    """The header length ``N`` from a file's first 8 bytes, checked against the
    file size and :data:`MAX_HEADER_BYTES` before anything else is read."""
    header_size = int.from_bytes(prefix, "little")
    if header_size == 0:
        raise HeaderError("header length is 0; the smallest header is '{}'")
    if header_size > file_size - _LENGTH_BYTES:
        raise HeaderError(f"header length {header_size} exceeds the file size ({file_size} bytes)")
    if header_size > MAX_HEADER_BYTES:
        raise HeaderError(
            f"header length {header_size} exceeds adapter-guard's {MAX_HEADER_BYTES}-byte limit"
            " (no real adapter comes close; the format allows 100 MB)"
        )
    return header_size


def parse_header(raw: bytes, file_size: int) -> Header:
    """Validate the ``N`` header bytes of a file of ``file_size`` bytes (``N`` as
    returned by :func:`header_length`); raises :class:`HeaderError`."""
    return _parse(raw, file_size)


def _read_exactly(fd: int, size: int) -> bytes:
    data = os.read(fd, size)
    if len(data) == size:
        return data
    # Short reads only happen when the file shrinks under us or on odd filesystems.
    buffer = bytearray(data)
    while len(buffer) < size:
        chunk = os.read(fd, size - len(buffer))
        if not chunk:
            raise HeaderError(f"file ended after {len(buffer)} of {size} bytes while reading the header")
        buffer += chunk
    return bytes(buffer)


def _parse(raw: bytes, file_size: int) -> Header:
    header_size = len(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise HeaderError(f"header is not UTF-8 (invalid byte at file offset {_LENGTH_BYTES + error.start})") from None
    try:
        document = json.loads(text)
    except RecursionError:
        raise HeaderError("header is not valid JSON: nested too deeply") from None
    except json.JSONDecodeError as error:
        raise HeaderError(f"header is not valid JSON: {error}") from None
    except ValueError:  # int() refusing a number with thousands of digits
        raise HeaderError("header is not valid JSON: a number is too long") from None
    if type(document) is not dict:
        raise HeaderError(f"header is a JSON {_json_type(document)}, not an object")
    metadata = document.pop("__metadata__", None)
    if metadata is not None:
        _check_metadata(metadata)
    tensors = _check_tensors(document, file_size - _LENGTH_BYTES - header_size)
    return Header(tensors, metadata, header_size, file_size)


def _check_tensors(document: dict, data_size: int) -> dict[str, TensorInfo]:
    """Validate every entry in one pass; the hot path of the whole lint.

    The checks are merged into a few conditions; when one fails,
    :func:`_entry_error` looks at that entry again and says exactly what is wrong.
    """
    # No dtype is narrower than 4 bits, so more elements than this cannot fit in
    # the data region; clamping there keeps hostile dims from growing the product.
    max_count = 2 * data_size + 1
    tensors: dict[str, TensorInfo] = {}
    previous_end = 0
    in_offset_order = True
    for name, entry in document.items():
        if not name.isascii():
            _check_unicode(name, f"tensor name {_quote(name)}")
        try:
            dtype = entry["dtype"]
            shape = entry["shape"]
            begin, end = entry["data_offsets"]
            bits = DTYPE_BITS[dtype]
        except (KeyError, TypeError, ValueError):
            raise _entry_error(name, entry, data_size) from None
        if type(shape) is not list or type(begin) is not int or type(end) is not int:
            raise _entry_error(name, entry, data_size)
        count = 1
        for dim in shape:
            # type() rather than isinstance(): JSON true/false are bools, not dimensions.
            if type(dim) is not int or dim < 0:
                raise _entry_error(name, entry, data_size)
            count *= dim
            if count > max_count:
                count = max_count
        if (
            not 0 <= begin <= end <= data_size
            or count * bits != (end - begin) * 8
            or (count == 0 and max(shape) > _MAX_USIZE)
        ):
            raise _entry_error(name, entry, data_size)
        if begin != end:
            if begin < previous_end:
                in_offset_order = False
            previous_end = end
        # namedtuple's generated __new__ is a Python-level call; this is the same, faster.
        tensors[name] = _tuple_new(TensorInfo, (dtype, tuple(shape), begin, end))
    if not in_offset_order:
        _check_overlaps(tensors)
    return tensors


def _entry_error(name: str, entry: object, data_size: int) -> HeaderError:
    """Say what is wrong with one tensor entry that failed a merged check."""
    if type(entry) is not dict:
        return _tensor_error(name, f"is a JSON {_json_type(entry)}, not an object")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in entry:
            return _tensor_error(name, f"has no {key!r}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if type(dtype) is not str or dtype not in DTYPE_BITS:
        return _tensor_error(name, f"has unknown dtype {_quote(dtype)}")
    if type(shape) is not list or any(type(dim) is not int or dim < 0 for dim in shape):
        return _tensor_error(name, f"has shape {_quote(shape)}, not a list of non-negative integers")
    if any(dim > _MAX_USIZE for dim in shape):
        return _tensor_error(name, f"has shape {_quote(shape)} with a dimension above 2**64 - 1")
    if type(offsets) is not list or len(offsets) != 2 or any(type(offset) is not int for offset in offsets):
        return _tensor_error(name, f"has data_offsets {_quote(offsets)}, not [begin, end]")
    begin, end = offsets
    if not 0 <= begin <= end:
        return _tensor_error(name, f"has data_offsets [{begin}, {end}], not 0 <= begin <= end")
    if end > data_size:
        return _tensor_error(
            name, f"has data_offsets [{begin}, {end}] past the end of the data region ({data_size} bytes)"
        )
    max_count = 2 * data_size + 1
    count = 1
    for dim in shape:
        count = min(count * dim, max_count)
    bit_count = count * DTYPE_BITS[dtype]
    if count == max_count:
        needed = "more bytes than the whole data region"
    elif bit_count % 8:
        needed = f"{bit_count} bits, not a whole number of bytes"
    else:
        needed = f"{bit_count // 8} bytes"
    return _tensor_error(
        name,
        f"has shape {_quote(shape)} of {dtype}, which needs {needed}, "
        f"but data_offsets [{begin}, {end}] hold {end - begin} bytes",
    )


def _check_metadata(metadata: object) -> None:
    if type(metadata) is not dict:
        raise HeaderError(f"__metadata__ is a JSON {_json_type(metadata)}, not an object of strings")
    for key, value in metadata.items():
        if type(value) is not str:
            raise HeaderError(f"__metadata__ {_quote(key)} is a JSON {_json_type(value)}, not a string")
        if not (key.isascii() and value.isascii()):
            _check_unicode(key, f"__metadata__ key {_quote(key)}")
            _check_unicode(value, f"__metadata__ {_quote(key)} value")


def _check_unicode(text: str, what: str) -> None:
    # json.loads accepts "\ud800"; such a string cannot be printed or written as UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise HeaderError(f"{what} contains an unpaired surrogate escape") from None


def _check_overlaps(tensors: dict[str, TensorInfo]) -> None:
    spans = sorted((info.begin, info.end, name) for name, info in tensors.items() if info.begin != info.end)
    for (_, end, name), (next_begin, next_end, next_name) in zip(spans, spans[1:]):
        if next_begin < end:
            begin = tensors[name].begin
            raise HeaderError(
                f"tensors {_quote(name)} [{begin}, {end}] and {_quote(next_name)} "
                f"[{next_begin}, {next_end}] overlap"
            )


def _tensor_error(name: str, problem: str) -> HeaderError:
    return HeaderError(f"tensor {_quote(name)} {problem}")


def _quote(value: object, limit: int = 60) -> str:
    """A short one-line JSON rendering, safe to print whatever the header holds."""
    if type(value) is str:
        text = json.dumps(value[:limit])
        return text if len(value) <= limit else text[:-1] + '..."'
    if type(value) is list and len(value) > 8:
        value = value[:8] + ["..."]
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):
        return f"<{_json_type(value)}>"
    return text if len(text) <= limit else text[:limit] + "..."


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "boolean"
    if type(value) in (int, float):
        return "number"
    if type(value) is str:
        return "string"
    if type(value) is list:
        return "array"
    return "object"


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()
