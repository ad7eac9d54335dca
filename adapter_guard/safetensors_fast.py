"""A faster header parser for the common layout, with msgspec (the ``fast`` extra).

:func:`parse_header` returns exactly what the reference parser (:mod:`safetensors_header`)
returns, or raises exactly its error, because it only ever *accepts* on its
own: msgspec decodes the header in C straight into typed records, and a
short Python loop makes the checks the types cannot (offsets inside the data
region, sizes that match the shapes, no overlaps). Anything unusual or wrong
goes to the reference parser, which then says exactly what is wrong:

- a header with a non-ASCII byte or a backslash anywhere (so no ``\\u``
  escape, no lone surrogate, no encoding question reaches msgspec);
- any msgspec error: not an object, an entry that is not an object, an
  unknown key in an entry, a missing field, a number that is not an integer
  ``>= 0``, a ``__metadata__`` with a key other than ``format``;
- any failed check, or a shape of more than :data:`MAX_FAST_DIMS` dimensions
  (the reference clamps its products; here they stay small by construction).

Because every value is typed, msgspec never skips a value unread, so it cannot
accept what ``json.loads`` refuses (a 5,000-digit number, deep nesting); the
differential tests (tests/test_safetensors_fast.py) hold the two parsers to the
same result on the hostile corpus, on fuzzed headers and on real layouts.

Importing msgspec costs about 20 ms (``python -X importtime``), more than a
whole one-adapter lint spends parsing, so the engine uses this parser only
above a number of files where it pays (:data:`adapter_guard.engine` decides).
"""

from __future__ import annotations

import os
from math import prod
from typing import Annotated, Union

import msgspec
from msgspec import UNSET, UnsetType

from . import safetensors_header as reference
from .safetensors_header import DTYPE_BITS, Header, TensorInfo

#: More dimensions than this is unusual for a LoRA factor: the reference parser takes it.
MAX_FAST_DIMS = 8

_LENGTH_BYTES = 8
# msgspec cannot bound an int above int64; the loop refuses larger ones (see below).
_Natural = Annotated[int, msgspec.Meta(ge=0)]
_MAX_USIZE = 2**64 - 1
_tuple_new = tuple.__new__


class _Entry(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A tensor entry, or (with only ``format`` set) a common ``__metadata__``.

    UNSET marks an absent field, and JSON null is refused: either sends the
    header to the reference parser (``{"dtype": null}`` is no metadata either).
    """

    dtype: Union[str, UnsetType] = UNSET
    shape: Union[Annotated[tuple[_Natural, ...], msgspec.Meta(max_length=MAX_FAST_DIMS)], UnsetType] = UNSET
    data_offsets: Union[tuple[_Natural, _Natural], UnsetType] = UNSET
    # __metadata__ as PEFT and the safetensors library write it: {"format": "pt"}.
    format: Union[str, UnsetType] = UNSET


# null: mx.save_safetensors writes "__metadata__": null.
_decode = msgspec.json.Decoder(dict[str, Union[_Entry, None]]).decode


def parse_header(raw: bytes, file_size: int) -> Header:
    """Validate the ``N`` header bytes of a file of ``file_size`` bytes, as
    :func:`safetensors_header.parse_header` does."""
    header = _parse_common(raw, file_size)
    if header is None:
        return reference._parse(raw, file_size)
    return header


def read_header(path: str | os.PathLike[str]) -> Header:
    """:func:`safetensors_header.read_header`, parsing with :func:`parse_header`."""
    return reference.read_header(path, parse=parse_header)


def parse_shapes(raw: bytes, file_size: int) -> dict[str, tuple[int, ...]]:
    """``parse_header(raw, file_size).shapes()``, without building the records the lint
    does not read (the checks are the same; an out-of-order layout goes to the reference)."""
    shapes = _parse_common(raw, file_size, records=False)
    if shapes is None:
        return reference._parse(raw, file_size).shapes()
    return shapes


def read_shapes(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """``read_header(path).shapes()``, parsing with :func:`parse_shapes`."""
    return reference.read_header(path, parse=parse_shapes)  # type: ignore[return-value]


def _parse_common(raw: bytes, file_size: int, records: bool = True) -> Header | dict | None:
    """The header, when it has the common layout and is valid; otherwise None.
    Without ``records``, only its shapes: {name: shape}."""
    if not raw.isascii() or b"\\" in raw:
        return None
    try:
        document = _decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    data_size = file_size - _LENGTH_BYTES - len(raw)
    metadata = document.pop("__metadata__", None)
    if metadata is not None:
        if metadata.dtype is not UNSET or metadata.shape is not UNSET or metadata.data_offsets is not UNSET:
            return None
        metadata = {} if metadata.format is UNSET else {"format": metadata.format}
    tensors: dict = {}
    previous_end = 0
    in_offset_order = True
    try:
        for name, entry in document.items():
            # A missing field is UNSET, a null entry None: the lookup, prod() or the unpacking raises.
            shape = entry.shape
            count = prod(shape)
            begin, end = entry.data_offsets
            dtype = entry.dtype
            # Offsets and dimensions above 2**64 - 1 fail here too: the data region
            # is smaller than 2**63 bytes, so only a zero count hides a dimension.
            if not begin <= end <= data_size or count * DTYPE_BITS[dtype] != (end - begin) * 8:
                return None
            if count == 0 and max(shape) > _MAX_USIZE:
                return None
            if begin != end:
                if begin < previous_end:
                    in_offset_order = False
                previous_end = end
            tensors[name] = _tuple_new(TensorInfo, (dtype, shape, begin, end)) if records else shape
    except (AttributeError, KeyError, TypeError):
        return None
    if not records:
        return tensors if in_offset_order else None  # the overlap check needs the records
    if not in_offset_order:
        try:
            reference._check_overlaps(tensors)
        except reference.HeaderError:
            return None
    return Header(tensors, metadata, len(raw), file_size)
