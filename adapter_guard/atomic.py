"""Write a file so that readers see the old bytes or the new ones, never a mix."""

from __future__ import annotations

import contextlib
import errno
import os
import stat


class WriteError(OSError):
    """A write that did not happen; ``str()`` is a one-line message for users."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class SymlinkRefusedError(WriteError):
    """The path is a symlink; replacing it would silently turn it into a regular file."""


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, keeping its permission bits.

    Raises ``SymlinkRefusedError`` for a symlink and ``WriteError`` (an
    ``OSError``) for anything else that fails; the original is then untouched
    and no temporary file is left behind.
    """
    import tempfile  # a few ms of imports that only a fix pays for, not the lint path

    path = os.fspath(path)
    # os.replace would replace the link itself, not its target: refuse rather than guess.
    if os.path.islink(path):
        raise SymlinkRefusedError(errno.ELOOP, f"refusing to write {path}: it is a symbolic link")
    directory = os.path.dirname(path) or "."
    try:
        original = os.stat(path)
    except FileNotFoundError:
        original = None
    except OSError as exc:
        raise WriteError(exc.errno, f"cannot write {path}: {exc.strerror}") from exc

    tmp = None
    try:
        # Same directory, so os.replace is a rename within one filesystem (atomic);
        # dot-prefixed, so tools that list the directory skip it.
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()  # Python's buffer to the OS
            os.fsync(f.fileno())  # the OS's cache to the disk, before the rename makes it visible
        if original is not None:
            _keep_owner(tmp, original)  # before chmod: chown clears setuid/setgid bits
        # mkstemp creates 0600; a rewrite must not change who can read the file.
        os.chmod(tmp, stat.S_IMODE(original.st_mode) if original is not None else _default_mode())
        os.replace(tmp, path)  # the atomic step: readers see old or new, never partial
        tmp = None
    except OSError as exc:
        raise WriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:  # failed before the rename: leave no litter
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _fsync_directory(directory)


def _keep_owner(tmp: str, original: os.stat_result) -> None:
    """Give the new file the old one's owner, where we may (root fixing a user's file)."""
    if not hasattr(os, "chown") or (original.st_uid, original.st_gid) == (os.geteuid(), os.getegid()):
        return
    with contextlib.suppress(PermissionError):  # an ordinary user cannot give files away
        os.chown(tmp, original.st_uid, original.st_gid)


def _default_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 minus the umask."""
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    """Persist the rename itself; best effort, since the new file is already in place."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open a directory
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)
