"""The filesystem as an adversary: directories, links, FIFOs, devices, permissions, read-only trees, pickles.

These tests run as root here, where permission bits do not stop reads or
writes. Each permission case is therefore proven twice:

- simulated in-process: ``os.open`` / ``os.replace`` / ``tempfile.mkstemp``
  raise the error the kernel would (EACCES, EROFS) for the one path involved;
- for real in a child process: as root the child runs under ``setpriv`` with
  CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped, so ``chmod 000`` and a
  ``chmod 555`` directory bite; the read-only case also runs on a real
  read-only bind mount made with ``unshare -m``. Each real variant is skipped,
  saying why, where the machine cannot do it.

Anything that could hang or exhaust memory if it regressed (FIFOs, /dev/zero)
runs in a child process with a timeout and an address-space limit.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from adapter_guard.formats.shared import PICKLE_SUFFIXES
from adapter_guard.readers import MAX_CONFIG_BYTES
from hostile import COMPLETE, exit_problems, preservation_problems, run_cli, temp_files, write_adapter

NEEDS_FIX = COMPLETE.replace('        "dropout": 0.0,\n', "")  # AG205: the fix adds dropout
CHILD = "import sys; from adapter_guard.cli import main; sys.exit(main(sys.argv[1:]))"


def child(*args, cwd, prefix=(), timeout=30, memory=None) -> subprocess.CompletedProcess:
    """The CLI in a fresh process; ``memory`` caps its address space (bytes)."""
    limit = (lambda: resource.setrlimit(resource.RLIMIT_AS, (memory, memory))) if memory else None
    return subprocess.run([*prefix, sys.executable, "-c", CHILD, *map(os.fspath, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limit)


def child_findings(result: subprocess.CompletedProcess) -> list[dict]:
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """The repository root (the working directory): the only tree a fix may write in."""
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


# -- what stands where the config should be ---------------------------------------------


def test_a_directory_named_adapter_config_json_is_ag005(repo):
    (repo / "adapter" / "adapter_config.json").mkdir(parents=True)
    for target in (repo, repo / "adapter" / "adapter_config.json"):  # found by the search, and named explicitly
        run = run_cli(target, "--fix", "--output-format", "json")
        assert (run.code, [(f["code"], f["message"]) for f in run.findings()]) == (
            1, [("AG005", "cannot read the config: is a directory")])


def test_a_dangling_link_is_ag005(repo):
    (repo / "adapter").mkdir()
    (repo / "adapter" / "adapter_config.json").symlink_to("nowhere.json")
    run = run_cli(repo, "--output-format", "json")
    assert [(f["code"], f["message"]) for f in run.findings()] == [("AG005", "cannot read the config: dangling symbolic link")]


def test_a_symlink_loop_is_ag005(repo):
    (repo / "adapter").mkdir()
    (repo / "adapter" / "adapter_config.json").symlink_to("adapter_config.json")
    run = run_cli(repo, "--fix", "--output-format", "json")
    assert exit_problems(run) == [] and run.code == 1
    assert [f["code"] for f in run.findings()] == ["AG005"]


def test_a_config_over_the_size_limit_is_ag005_and_untouched(repo):
    config = NEEDS_FIX.replace("{", "{" + " " * MAX_CONFIG_BYTES, 1).encode()
    path = write_adapter(repo / "adapter", config)
    run = run_cli(path, "--fix", "--output-format", "json")
    assert [(f["code"], f["message"]) for f in run.findings()] == [
        ("AG005", f"cannot read the config: larger than {MAX_CONFIG_BYTES} bytes, the most adapter-guard reads")]
    assert path.read_bytes() == config


def test_a_fifo_config_is_ag005_without_blocking(repo):
    (repo / "adapter").mkdir()
    os.mkfifo(repo / "adapter" / "adapter_config.json")  # nobody ever writes: a blocking open would hang
    result = child(repo, "--fix", "--output-format", "json", cwd=repo, timeout=20)
    assert [(f["code"], f["message"]) for f in child_findings(result)] == [
        ("AG005", "cannot read the config: not a regular file")]


def test_a_config_linked_to_dev_zero_is_refused_in_bounded_memory(repo):
    (repo / "adapter").mkdir()
    (repo / "adapter" / "adapter_config.json").symlink_to("/dev/zero")
    result = child(repo, "--fix", "--output-format", "json", cwd=repo, timeout=20, memory=1024**3)
    assert [f["code"] for f in child_findings(result)] == ["AG006", "AG005"]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_hostile_base_config_json_beside_the_adapter_is_skipped(repo, kind):
    path = write_adapter(repo / "adapter", COMPLETE)
    base = path.parent / "config.json"
    os.mkfifo(base) if kind == "fifo" else base.symlink_to("/dev/zero")
    result = child(path, "--output-format", "json", cwd=repo, timeout=20, memory=1024**3)
    assert (result.returncode, child_findings(result)) == (0, [])


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "dangling"])
def test_hostile_weights_files_are_ag102_without_blocking(repo, kind):
    path = write_adapter(repo / "adapter", COMPLETE)
    weights = path.parent / "adapters.safetensors"
    weights.unlink()
    {"fifo": lambda: os.mkfifo(weights), "dev-zero": lambda: weights.symlink_to("/dev/zero"),
     "dangling": lambda: weights.symlink_to("gone")}[kind]()
    result = child(path, "--output-format", "json", cwd=repo, timeout=20, memory=1024**3)
    assert [f["code"] for f in child_findings(result)] == ["AG102"]


# -- symbolic links and the repository boundary ---------------------------------------------


def test_a_config_linked_outside_the_repository_is_read_never_written(repo, tmp_path):
    outside = tmp_path / "elsewhere" / "adapter_config.json"
    outside.parent.mkdir()
    outside.write_text(NEEDS_FIX)
    write_adapter(repo / "adapter", COMPLETE)
    link = repo / "adapter" / "adapter_config.json"
    link.unlink()
    link.symlink_to(outside)

    run = run_cli(repo, "--fix")
    assert exit_problems(run) == [] and run.code == 1
    assert f"AG006 (warning) links to `{outside}`, outside `{repo}`; it is read but never written" in run.out
    assert "AG205" in run.out  # the target was still checked
    assert "AG205 [*]" not in run.out  # a fix that is never written is not offered
    assert outside.read_text() == NEEDS_FIX and link.is_symlink()


def test_a_directory_linked_outside_the_repository_is_never_written_through(repo, tmp_path):
    outside = write_adapter(tmp_path / "elsewhere" / "adapter", NEEDS_FIX)
    (repo / "linked").symlink_to(outside.parent)
    run = run_cli(repo / "linked" / "adapter_config.json", "--fix")
    assert exit_problems(run) == [] and run.code == 1
    assert f"AG006 (warning) links to `{outside}`" in run.out and "[*]" not in run.out
    assert outside.read_text() == NEEDS_FIX


def test_discovery_vouches_only_for_configs_that_resolve_inside_the_repository(repo, tmp_path):
    """The engine skips resolving a config discovery reached without a link from a directory
    inside the root: every path it vouches for must resolve inside, as ``_linked_outside`` finds."""
    from adapter_guard.discover import discover
    from adapter_guard.engine import _linked_outside

    outside = write_adapter(tmp_path / "elsewhere" / "adapter", COMPLETE)
    write_adapter(repo / "plain", COMPLETE)
    write_adapter(repo / "deep" / "er" / "adapter", COMPLETE)
    (repo / "dir-link-out").symlink_to(outside.parent)
    (repo / "dir-link-in").symlink_to(repo / "deep")
    (repo / "file-links").mkdir()
    (repo / "file-links" / "adapter_config.json").symlink_to(outside)
    (repo / "file-link-in").mkdir()
    (repo / "file-link-in" / "adapter_config.json").symlink_to(repo / "plain" / "adapter_config.json")
    (repo / "loop").mkdir()
    (repo / "loop" / "adapter_config.json").symlink_to("adapter_config.json")
    (tmp_path / "link-to-repo").symlink_to(repo)
    starts = [Path("."), repo, Path("dir-link-out"), Path("dir-link-in"), Path("file-links"), tmp_path / "link-to-repo",
              tmp_path / "elsewhere", Path("deep/../plain"), repo / "file-links" / "adapter_config.json"]
    vouched = set()
    for start in starts:
        unlinked: set[str] = set()
        found = discover([start], root=repo, exclude=[], unlinked=unlinked)
        assert unlinked <= {str(p) for p in found}
        for path in found:
            if str(path) in unlinked:
                assert _linked_outside(path, repo) is None, (start, path)
                vouched.add(str(path))
    assert {"plain/adapter_config.json", "dir-link-in/er/adapter/adapter_config.json"} <= vouched
    assert str(repo / "deep/er/adapter/adapter_config.json") in vouched
    # A config that is itself a link, or anything reached through a directory outside, is resolved as before.
    assert not any(part in p for p in vouched for part in ("file-link", "loop", "elsewhere", "dir-link-out"))


def test_the_listing_discovery_hands_on_is_the_directory_as_read_again(repo, tmp_path):
    """Every entry, in the order the file system lists it, and whether it is a file (links
    followed, a dangling one not): what reading the adapter directory would give."""
    from adapter_guard import discover as discovery
    from adapter_guard.readers import listing

    adapter = write_adapter(repo / "adapter", COMPLETE).parent
    for i in range(5):
        (adapter / f"checkpoint-{i}.safetensors").write_bytes(b"")
    (adapter / "sub").mkdir()
    (adapter / "dangling").symlink_to("missing")
    (adapter / "file-link").symlink_to("adapter_config.json")
    crowded = write_adapter(repo / "crowded", COMPLETE).parent
    for i in range(discovery.MAX_HANDED_LISTING):
        (crowded / f"extra-{i}").write_bytes(b"")
    listings: dict[str, dict[str, bool]] = {}
    found = discovery.discover([Path(".")], root=repo, exclude=[], listings=listings)
    assert set(listings) == {"adapter/adapter_config.json"} and len(found) == 2  # the crowded one is listed again
    handed = listings["adapter/adapter_config.json"]
    assert list(handed.items()) == list(listing(list(os.scandir(adapter))).items())
    assert handed["file-link"] is True and handed["dangling"] is False and handed["sub"] is False


def test_discovery_hands_on_a_bounded_number_of_entries_in_all(repo, monkeypatch):
    from adapter_guard import discover as discovery

    monkeypatch.setattr(discovery, "MAX_HANDED_ENTRIES", 10)
    for i in range(8):
        write_adapter(repo / f"adapter-{i}", COMPLETE)  # two entries each
    listings: dict[str, dict[str, bool]] = {}
    found = discovery.discover([Path(".")], root=repo, exclude=[], listings=listings)
    assert len(found) == 8 and len(listings) == 5  # 10 entries handed on, then one more directory
    assert sum(len(entries) for entries in listings.values()) == 10


def test_a_config_named_outside_the_repository_without_links_is_fixed(repo, tmp_path):
    path = write_adapter(tmp_path / "elsewhere", NEEDS_FIX)  # the user's explicit choice, not a link's
    assert run_cli(path, "--fix").code == 0
    assert '"dropout": 0.0' in path.read_text()


def test_a_config_linked_outside_the_repository_never_shows_its_text(repo, tmp_path):
    secret = tmp_path / "elsewhere" / "credentials.json"
    secret.parent.mkdir()
    secret.write_text('{\n    "type": "service_account",\n    "private_key": "-----BEGIN PRIVATE KEY-----SECRET"\n}\n')
    write_adapter(repo / "adapter", COMPLETE)
    link = repo / "adapter" / "adapter_config.json"
    link.unlink()
    link.symlink_to(secret)
    for flags in (["--diff"], ["--fix", "--diff"], ["--fix"], ["--output-format", "sarif"], ["--output-format", "github"],
                  ["--diff", "--ignore", "AG006"]):
        run = run_cli(repo, *flags)
        assert "SECRET" not in run.out + run.err, flags
        assert exit_problems(run) == [] and run.code == 1


def test_ag006_and_ag005_obey_ignore(repo, tmp_path):
    outside = tmp_path / "elsewhere.json"
    outside.write_text(COMPLETE)
    (repo / "a").mkdir()
    (repo / "a" / "adapter_config.json").symlink_to(outside)
    (repo / "b" / "adapter_config.json").mkdir(parents=True)
    run = run_cli(repo, "--ignore", "AG0,AG1", "--output-format", "json")
    assert (run.code, run.findings()) == (0, [])


def test_a_config_linked_inside_the_repository_is_fixed_through_the_link(repo):
    target = write_adapter(repo / "real", NEEDS_FIX)
    write_adapter(repo / "adapter", COMPLETE)
    link = repo / "adapter" / "adapter_config.json"
    link.unlink()
    link.symlink_to(target)
    assert run_cli(link, "--fix").code == 0
    assert link.is_symlink() and preservation_problems(NEEDS_FIX.encode(), target.read_bytes(), unsafe=False) == []
    assert '"dropout": 0.0' in target.read_text()


# -- permissions, simulated ---------------------------------------------------------------------


def refuse(monkeypatch, module, name, path: Path, error: OSError):
    """Make ``module.name`` raise ``error`` when called on ``path`` (what the kernel does for a non-root user)."""
    real = getattr(module, name)

    def refusing(target, *args, **kwargs):
        if os.fspath(target) == os.fspath(path):
            raise error
        return real(target, *args, **kwargs)

    monkeypatch.setattr(module, name, refusing)


def test_an_unreadable_config_is_ag005_simulated(repo, monkeypatch):
    path = write_adapter(repo / "adapter", NEEDS_FIX)
    refuse(monkeypatch, os, "open", path, PermissionError(errno.EACCES, "Permission denied"))
    run = run_cli(path, "--fix", "--output-format", "json")
    assert [(f["code"], f["message"]) for f in run.findings()] == [("AG005", "cannot read the config: Permission denied")]


def test_unreadable_weights_are_ag102_simulated(repo, monkeypatch):
    path = write_adapter(repo / "adapter", COMPLETE)
    refuse(monkeypatch, os, "open", path.parent / "adapters.safetensors", PermissionError(errno.EACCES, "Permission denied"))
    run = run_cli(path, "--output-format", "json")
    assert [(f["code"], f["message"]) for f in run.findings()] == [
        ("AG102", "`adapters.safetensors`: cannot open: permission denied")]


def _read_only(monkeypatch, path):
    """``os.replace`` onto ``path`` fails as on a read-only file system."""
    real_replace = os.replace

    def read_only(source, destination, *args, **kwargs):
        if os.fspath(destination) == os.fspath(path):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_replace(source, destination, *args, **kwargs)

    monkeypatch.setattr(os, "replace", read_only)


def test_a_read_only_filesystem_fails_the_fix_cleanly_simulated(repo, monkeypatch):
    path = write_adapter(repo / "adapter", NEEDS_FIX)
    _read_only(monkeypatch, path)
    run = run_cli(path, "--fix")
    assert exit_problems(run) == [] and run.code == 1
    assert f"{path}: not fixed: cannot write {path}: Read-only file system" in run.out
    assert "AG205" in run.out  # still a finding: nothing was fixed
    assert path.read_text() == NEEDS_FIX and temp_files(repo) == []


def test_json_output_says_on_stderr_that_a_fix_was_not_written(repo, monkeypatch):
    path = write_adapter(repo / "adapter", NEEDS_FIX)
    _read_only(monkeypatch, path)
    run = run_cli(path, "--fix", "--output-format", "json")
    assert exit_problems(run) == [] and run.code == 1
    assert f"{path}: not fixed: cannot write {path}: Read-only file system" in run.err
    assert "AG205" in [f["code"] for f in run.findings()]  # stdout stays one JSON document


def test_a_directory_without_write_permission_fails_the_fix_cleanly_simulated(repo, monkeypatch):
    path = write_adapter(repo / "adapter", NEEDS_FIX)

    def no_write(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", no_write)
    run = run_cli(path, "--fix")
    assert exit_problems(run) == [] and run.code == 1
    assert "not fixed: cannot write" in run.out and "Permission denied" in run.out
    assert path.read_text() == NEEDS_FIX and temp_files(repo) == []


# -- permissions, for real in a child process ------------------------------------------------------


def _unprivileged_prefix() -> tuple[str, ...] | None:
    """A command prefix under which permission bits apply, or None."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = (setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--")
    with tempfile.NamedTemporaryFile() as probe:
        os.chmod(probe.name, 0o000)
        refused = subprocess.run([*prefix, "cat", probe.name], capture_output=True).returncode != 0
    return prefix if refused else None


UNPRIVILEGED = _unprivileged_prefix()
needs_unprivileged = pytest.mark.skipif(
    UNPRIVILEGED is None, reason="running as root and cannot drop CAP_DAC_OVERRIDE (no setpriv): permission bits do not apply"
)


@pytest.fixture
def world_dir():
    """A scratch directory outside pytest's 0700 tmp tree."""
    path = Path(tempfile.mkdtemp(prefix="adapter-guard-perm-"))
    path.chmod(0o755)
    yield path
    for directory in (path, *path.rglob("*")):
        if directory.is_dir() and not directory.is_symlink():
            directory.chmod(0o755)
    shutil.rmtree(path)


@needs_unprivileged
def test_an_unreadable_config_is_ag005_for_real(world_dir):
    path = write_adapter(world_dir / "adapter", NEEDS_FIX)
    path.chmod(0o000)
    result = child(world_dir, "--fix", "--output-format", "json", cwd=world_dir, prefix=UNPRIVILEGED)
    assert [(f["code"], f["message"]) for f in child_findings(result)] == [
        ("AG005", "cannot read the config: Permission denied")]


@needs_unprivileged
def test_unreadable_weights_are_ag102_for_real(world_dir):
    path = write_adapter(world_dir / "adapter", COMPLETE)
    (path.parent / "adapters.safetensors").chmod(0o000)
    result = child(world_dir, "--output-format", "json", cwd=world_dir, prefix=UNPRIVILEGED)
    assert [(f["code"], f["message"]) for f in child_findings(result)] == [
        ("AG102", "`adapters.safetensors`: cannot open: permission denied")]


@needs_unprivileged
def test_a_read_only_directory_fails_the_fix_cleanly_for_real(world_dir):
    path = write_adapter(world_dir / "adapter", NEEDS_FIX)
    path.parent.chmod(0o555)
    result = child(world_dir, "--fix", cwd=world_dir, prefix=UNPRIVILEGED)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "not fixed: cannot write" in result.stdout and "Permission denied" in result.stdout
    assert path.read_text() == NEEDS_FIX and temp_files(world_dir) == []


def _can_bind_read_only() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {tmp} {tmp} && mount -o remount,bind,ro {tmp} "
                                f"&& ! touch {tmp}/x 2>/dev/null"], capture_output=True)
        return probe.returncode == 0


@pytest.mark.skipif(not _can_bind_read_only(), reason="cannot make a read-only bind mount here (needs unshare -m and mount)")
def test_a_read_only_mount_fails_the_fix_cleanly_for_real(tmp_path):
    path = write_adapter(tmp_path / "adapter", NEEDS_FIX)
    script = (f"mount --bind {tmp_path} {tmp_path} && mount -o remount,bind,ro {tmp_path} && "
              f"exec {sys.executable} -c '{CHILD}' {tmp_path} --fix")
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "not fixed: cannot write" in result.stdout and "Read-only file system" in result.stdout
    assert path.read_text() == NEEDS_FIX and temp_files(tmp_path) == []


# -- pickle weights ------------------------------------------------------------------------------------


class _Tripwire:
    """Unpickling this creates ``marker``: proof that something loaded the file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


AUDIT_CHILD = """
import json, os, sys
opened = []
sys.addaudithook(lambda event, args: opened.append(os.fsdecode(args[0])) if event == "open" and isinstance(args[0], (str, bytes)) else None)
from adapter_guard.cli import main
code = main(sys.argv[1:])
print(json.dumps(opened), file=sys.stderr)
sys.exit(code)
"""


def test_pickle_weights_are_ag107_and_never_opened(repo):
    path = write_adapter(repo / "adapter", COMPLETE)
    marker = repo / "unpickled"
    payload = pickle.dumps(_Tripwire(str(marker)))
    names = [f"adapters{suffix}" for suffix in PICKLE_SUFFIXES]
    for name in names:
        (path.parent / name).write_bytes(payload)

    result = subprocess.run([sys.executable, "-c", AUDIT_CHILD, str(repo), "--fix", "--output-format", "json"],
                            cwd=repo, capture_output=True, text=True, timeout=30)
    findings = json.loads(result.stdout)
    assert result.returncode == 1  # AG107 is a warning, and warnings fail by default
    assert sorted(f["message"].split("`")[1] for f in findings if f["code"] == "AG107") == sorted(names)
    assert {f["code"] for f in findings} == {"AG107"}
    opened = json.loads(result.stderr.strip().splitlines()[-1])
    assert str(path) in opened or os.path.relpath(path, repo) in opened  # the audit hook does see opens
    assert [p for p in opened if p.endswith(PICKLE_SUFFIXES)] == []
    assert not marker.exists()
    pickle.loads(payload).close()  # the tripwire is live: loading any of them would have created the marker
    assert marker.exists()
