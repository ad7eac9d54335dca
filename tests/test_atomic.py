"""Atomic writes: the old bytes or the new ones, the same mode, no litter."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

import pytest

from adapter_guard import atomic
from adapter_guard.atomic import SymlinkRefusedError, WriteError, atomic_write

NOBODY = 65534


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "adapter_config.json"
    path.write_bytes(b'{"rank": 8}\n')
    return path


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_the_new_bytes(config):
    atomic_write(config, b'{"rank": 16}\n')
    assert config.read_bytes() == b'{"rank": 16}\n'


def test_accepts_a_str_path(config):
    atomic_write(str(config), b"{}")
    assert config.read_bytes() == b"{}"


def test_keeps_the_file_mode(config):
    os.chmod(config, 0o640)
    atomic_write(config, b"{}")
    assert mode(config) == 0o640


def test_keeps_an_executable_mode(config):
    os.chmod(config, 0o755)
    atomic_write(config, b"{}")
    assert mode(config) == 0o755


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root can give a file away")
def test_keeps_the_owner_when_root_rewrites_a_users_file(config):
    os.chown(config, NOBODY, NOBODY)
    atomic_write(config, b"{}")
    assert (os.stat(config).st_uid, os.stat(config).st_gid) == (NOBODY, NOBODY)


def test_a_new_file_gets_the_mode_open_would_give(tmp_path):
    umask = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.json", b"{}")
    finally:
        os.umask(umask)
    assert mode(tmp_path / "new.json") == 0o640


def test_replaces_the_file_rather_than_rewriting_it_in_place(config):
    # A reader holding the old file keeps reading the old bytes: proof of a rename, not a truncate.
    with open(config, "rb") as reader:
        atomic_write(config, b'{"rank": 16}\n')
        assert reader.read() == b'{"rank": 8}\n'


def test_leaves_no_temporary_file(config):
    atomic_write(config, b"{}")
    assert os.listdir(config.parent) == [config.name]


def test_a_failed_replace_leaves_the_original_and_no_temporary_file(config, monkeypatch):
    def fail(src, dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(WriteError, match=r"cannot write .*adapter_config\.json: Input/output error"):
        atomic_write(config, b"{}")
    assert config.read_bytes() == b'{"rank": 8}\n'
    assert os.listdir(config.parent) == [config.name]


def test_an_interrupted_write_leaves_no_temporary_file(config, monkeypatch):
    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(config, b"{}")
    assert os.listdir(config.parent) == [config.name]


def test_write_errors_are_oserrors_with_a_one_line_message(config, monkeypatch):
    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", disk_full)
    with pytest.raises(OSError) as info:
        atomic_write(config, b"{}")
    assert str(info.value) == f"cannot write {config}: No space left on device"
    assert info.value.errno == 28


def test_refuses_a_symlink(config):
    link = config.parent / "link.json"
    link.symlink_to(config.name)
    with pytest.raises(SymlinkRefusedError, match="symbolic link"):
        atomic_write(link, b"{}")
    assert link.is_symlink()
    assert config.read_bytes() == b'{"rank": 8}\n'


def test_refuses_a_dangling_symlink(tmp_path):
    link = tmp_path / "adapter_config.json"
    link.symlink_to("missing.json")
    with pytest.raises(SymlinkRefusedError):
        atomic_write(link, b"{}")
    assert not (tmp_path / "missing.json").exists()


def test_a_symlink_refusal_is_an_oserror():
    assert issubclass(SymlinkRefusedError, OSError)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to drop privileges")
def test_a_read_only_directory_gives_an_oserror_and_keeps_the_original():
    # Root ignores directory permissions, so the write runs in a child that drops to nobody.
    # The directory lives directly under /tmp so that nobody can reach it.
    outer = tempfile.mkdtemp()
    try:
        os.chmod(outer, 0o755)
        directory = os.path.join(outer, "adapter")
        os.mkdir(directory)
        path = os.path.join(directory, "adapter_config.json")
        with open(path, "wb") as f:
            f.write(b'{"rank": 8}\n')
        os.chmod(path, 0o666)
        os.chmod(directory, 0o555)

        status, message = _in_unprivileged_child(lambda: _try_write(path))

        assert status == 0, message
        assert message == f"cannot write {path}: Permission denied"
        with open(path, "rb") as f:
            assert f.read() == b'{"rank": 8}\n'
        assert os.listdir(directory) == ["adapter_config.json"]
    finally:
        os.chmod(os.path.join(outer, "adapter"), 0o755)
        shutil.rmtree(outer)


def _try_write(path: str) -> str:
    # The file must be readable and the directory searchable: only the write may fail.
    assert os.access(path, os.R_OK | os.W_OK) and not os.access(os.path.dirname(path), os.W_OK)
    try:
        atomic_write(path, b"{}")
    except WriteError as exc:
        return str(exc)
    return "no error"


def _in_unprivileged_child(action) -> tuple[int, str]:
    """Run ``action`` in a forked child, as nobody when we are root; its exit status and result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        status = 1
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            result = action()
            status = 0
        except BaseException as exc:  # report everything to the parent
            result = repr(exc)
        finally:
            os.write(write_end, result.encode())
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        output = f.read().decode()
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status), output
