"""The one place that reads an adapter directory from disk.

Config bytes, the safetensors header of the weights file, the directory
listing and a base model's config.json are read here and nowhere else; the
rules in ``adapter_guard.formats`` get plain values and do no I/O. Every
weights-header read goes through ``read_weights_header`` (or, for the shapes
alone, ``read_adapter_files``), which also reads the header of a Git LFS
object when the file is only its pointer (``adapter_guard.lfs``, imported only
when a local read fails).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from . import jsondoc
from .record import Record
from .safetensors_header import Header, HeaderError, read_header

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the lint path
if TYPE_CHECKING:
    from typing import Any, Union

    from .lfs import LfsHeaders

    #: The run's Git LFS choice, or a function that makes it: called only when a pointer is met.
    LfsChoice = Union[LfsHeaders, Callable[[], LfsHeaders], None]

#: The largest adapter_config.json (or base config.json) read. Real ones are
#: 1-40 kB; parsing with positions peaks at about 130 bytes per byte of JSON.
MAX_CONFIG_BYTES = 1024 * 1024
#: The weights file mlx-lm (and everything that writes its layout) loads.
MLX_WEIGHTS = "adapters.safetensors"
#: PEFT's weights file, and its pickled fallback (``safe_serialization=False``).
PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_BIN_WEIGHTS = "adapter_model.bin"
#: mlx-examples ``lora/`` and mlx-lm before 0.6 (an ``mx.savez`` archive; never loaded here).
NPZ_WEIGHTS = "adapters.npz"
#: Every weights file an adapter directory can be recognised by, in the order discovery prefers.
WEIGHTS_NAMES = (MLX_WEIGHTS, PEFT_WEIGHTS, PEFT_BIN_WEIGHTS, NPZ_WEIGHTS)
#: The safetensors files whose header is read.
SAFETENSORS_WEIGHTS = (MLX_WEIGHTS, PEFT_WEIGHTS)


def read_config_bytes(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or an OSError saying why not.

    A config can be a planted FIFO or a link to /dev/zero: open without
    blocking, refuse anything but a regular file, and never read past the limit.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks, size = [], 0
        while chunk := os.read(fd, limit + 1 - size):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # checked while reading: the file may grow after fstat
                raise OSError(errno.EFBIG, f"larger than {limit} bytes, the most adapter-guard reads")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_weights_header(path: Path, lfs_headers: LfsChoice = None) -> Header:
    """The safetensors header of a weights file (never its tensor data); HeaderError says why not.

    A file that fails the local read and is a Git LFS pointer is never a
    corrupt file: its object's header is fetched from the LFS server when the
    run allows it (``lfs_headers``), and :class:`lfs.NotFetched` says why not
    otherwise. The local read comes first, so real files cost nothing extra.
    """
    try:
        return _read_header(path)
    except HeaderError:
        from . import lfs

        pointer = lfs.read_pointer(path)
        if pointer is None:
            raise
    return lfs.pointer_header(path, pointer, lfs_headers() if callable(lfs_headers) else lfs_headers)


def _shapes_of(path: Path) -> dict[str, tuple[int, ...]]:
    return read_header(path).shapes()


_read_header = read_header
#: The tensor shapes of a local file: what the lint reads, without the records it does not use.
_read_shapes = _shapes_of


def use_fast_header_parser() -> bool:
    """Parse headers with msgspec (the ``fast`` extra) from now on, if it is installed.

    Same results and messages (``safetensors_fast`` falls back to the reference
    parser for anything unusual); it pays only for many files, because importing
    msgspec costs about as much as parsing 80 headers.
    """
    global _read_header, _read_shapes
    try:
        from .safetensors_fast import read_header as fast_read_header, read_shapes as fast_read_shapes
    except ImportError:  # msgspec is not installed: the reference parser does the same work
        return False
    _read_header, _read_shapes = fast_read_header, fast_read_shapes
    return True


class WeightsFile(Record):
    """One weights file as read: its tensor shapes, or why they could not be read."""

    __slots__ = ("name", "shapes", "error", "not_fetched")

    def __init__(self, name: str, shapes: dict[str, tuple[int, ...]] | None = None, error: str | None = None,
                 not_fetched: str | None = None) -> None:
        self.name = name
        self.shapes = shapes
        self.error = error
        #: The file is a Git LFS pointer whose header was not fetched: why, and how to fetch it.
        self.not_fetched = not_fetched


class AdapterFiles(Record):
    """What sits in an adapter directory, as plain values for the rules."""

    __slots__ = ("entries", "weights")

    def __init__(self, entries: dict[str, bool] | None = None, weights: dict[str, WeightsFile] | None = None) -> None:
        #: Every entry's name, mapped to whether it is a regular file (links followed).
        self.entries = {} if entries is None else entries
        #: The safetensors weights files that were read, by name.
        self.weights = {} if weights is None else weights


def listing(scanned: list[os.DirEntry]) -> dict[str, bool]:
    """Every entry's name, mapped to whether it is a regular file (links followed)."""
    entries = {}
    for entry in scanned:
        try:
            entries[entry.name] = entry.is_file()
        except OSError:
            entries[entry.name] = False
    return entries


def read_adapter_files(
    adapter_dir: Path, weights_names: tuple[str, ...] = SAFETENSORS_WEIGHTS, lfs_headers: LfsChoice = None,
    entries: dict[str, bool] | None = None,
) -> AdapterFiles:
    """List ``adapter_dir`` (unless ``entries`` is its listing, as discovery made it) and
    read the header of each of ``weights_names`` that is present."""
    if entries is None:
        try:
            entries = listing(list(os.scandir(adapter_dir)))
        except OSError:
            entries = {}
    weights = {}
    for name in weights_names:
        if name not in entries:
            continue
        try:
            weights[name] = WeightsFile(name, shapes=_read_shapes(adapter_dir / name))
        except HeaderError as exc:  # every failure, including "cannot open", arrives as one
            weights[name] = _refused(adapter_dir / name, exc, lfs_headers)
    return AdapterFiles(entries, weights)


def _refused(path: Path, error: HeaderError, lfs_headers: LfsChoice) -> WeightsFile:
    """A weights file the local read refused: a Git LFS pointer's header (or why it was
    not fetched), else the local read's error; as ``read_weights_header`` gives them."""
    from . import lfs

    pointer = lfs.read_pointer(path)
    if pointer is None:
        return WeightsFile(path.name, error=error.message)
    try:
        header = lfs.pointer_header(path, pointer, lfs_headers() if callable(lfs_headers) else lfs_headers)
    except lfs.NotFetched as exc:
        return WeightsFile(path.name, not_fetched=exc.message)
    except HeaderError as exc:
        return WeightsFile(path.name, error=exc.message)
    return WeightsFile(path.name, shapes=header.shapes())


def read_base_config(config_path: Path) -> tuple[dict[str, Any] | None, str]:
    """A base model's ``config.json`` as a JSON object, or None and why it cannot be used.
    Which base to read is ``adapter_guard.base``'s business."""
    try:
        doc = jsondoc.load(read_config_bytes(config_path))
    except OSError as exc:
        return None, f"cannot read it: {exc.strerror or exc}"
    except jsondoc.JsonDocError as exc:
        return None, f"it is not valid JSON: {exc}"
    if not isinstance(doc.value, dict):
        return None, "its top level is not a JSON object"
    return doc.value, ""
