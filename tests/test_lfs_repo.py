"""A pointer-only clone is linted like the full checkout, reading only the headers from the LFS server.

The repositories are made by the real git and git-lfs clients (``lfs_repo``):
git-lfs pushes the adapters through the stand-in server's Batch API and
downloads them again for the full checkout, so the stand-in speaks the
protocol the client speaks. The pointer-only clone is what ``actions/checkout``
leaves by default.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest

from adapter_guard import lfs, readers
from adapter_guard.cli import main
from adapter_guard.safetensors_header import MAX_HEADER_BYTES, read_header
from lfs_repo import make_lfs_repos
from lfs_server import STORAGE_TOKEN, LfsServer


@pytest.fixture(scope="module")
def server():
    server = LfsServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def repos(tmp_path_factory, server):
    return make_lfs_repos(tmp_path_factory.mktemp("lfs"), server)


@pytest.fixture(autouse=True)
def git_home(repos, server, monkeypatch):
    """Git's configuration is the test HOME's; no CI variables leak in; the server starts clean."""
    for key in ("GITHUB_ACTIONS", "GITHUB_TOKEN", "GITHUB_SERVER_URL", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(repos.home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setattr(lfs, "TIMEOUT_SECONDS", 2.0)
    monkeypatch.setattr(lfs, "DEADLINE_SECONDS", 5.0)
    server.range_support = True
    server.reset()
    yield
    server.reset()


def lint(root: Path, capsys, monkeypatch, *args: str) -> tuple[int, list[tuple[str, str, str]]]:
    """(exit code, findings as (code, path, message)) of ``adapter-guard ARGS .`` run in ``root``."""
    monkeypatch.chdir(root)
    capsys.readouterr()
    code = main(["--output-format", "json", *args, "."])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, [(f["code"], f["path"], f["message"]) for f in json.loads(out)]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def weights(root: Path, adapter: str) -> Path:
    [path] = (root / adapter).glob("*.safetensors")  # adapters.safetensors, or PEFT's adapter_model.safetensors
    return path


def test_the_clones_are_what_git_lfs_made(repos):
    for adapter in repos.adapters:
        source = weights(repos.source, adapter).read_bytes()
        assert weights(repos.full, adapter).read_bytes() == source  # downloaded through the stand-in
        pointer = lfs.read_pointer(weights(repos.pointers, adapter))
        assert pointer == lfs.Pointer(hashlib.sha256(source).hexdigest(), len(source))
        made = subprocess.run(
            ["git", "lfs", "pointer", f"--file={weights(repos.source, adapter)}"],
            capture_output=True, env=repos.env, check=True,
        ).stdout
        assert weights(repos.pointers, adapter).read_bytes() == made


def test_pointer_clone_findings_equal_the_full_checkout(repos, server, capsys, monkeypatch):
    full_code, full = lint(repos.full, capsys, monkeypatch)
    assert server.requests == []  # real files: the server is never asked
    code, fetched = lint(repos.pointers, capsys, monkeypatch, "--lfs-headers")
    assert fetched == full
    assert code == full_code == 1
    assert {"AG203", "AG301", "AG102"} <= {c for c, _, _ in full}
    assert "AG110" not in {c for c, _, _ in full}


def test_only_the_header_bytes_are_transferred(repos, server, capsys, monkeypatch):
    lint(repos.pointers, capsys, monkeypatch, "--lfs-headers")
    for adapter in repos.adapters:
        local = weights(repos.source, adapter)
        oid = hashlib.sha256(local.read_bytes()).hexdigest()
        header_bytes = 8 + int.from_bytes(local.read_bytes()[:8], "little")
        assert server.sent[oid] == header_bytes, adapter
        assert header_bytes < 8 * 1024, adapter
    big = weights(repos.source, "adapters/big")
    assert server.sent[hashlib.sha256(big.read_bytes()).hexdigest()] < 1024  # of 32 MiB
    assert sum(server.sent.values()) < 16 * 1024


def test_each_object_is_asked_for_once_per_run(repos, server, capsys, monkeypatch):
    lint(repos.pointers, capsys, monkeypatch, "--lfs-headers")
    # seven adapters; attention and attention-copy share one object
    assert len(repos.adapters) == 7
    assert len(server.batch_bodies) == 6
    oids = [o["oid"] for body in server.batch_bodies for o in body["objects"]]
    assert len(set(oids)) == 6
    assert all(body["operation"] == "download" for body in server.batch_bodies)
    assert len(server.downloads()) == 12  # per object: the first 8 bytes, then the header


def test_download_carries_the_href_header_and_nothing_of_ours(repos, server, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_jobtoken")
    monkeypatch.setenv("GITHUB_SERVER_URL", server.url.split("/models.git")[0])
    lint(repos.pointers, capsys, monkeypatch)  # on by default in Actions
    batch = server.batch_requests()
    assert batch and all(h["Authorization"] == "Basic " + _b64("x-access-token:ghs_jobtoken") for h in batch)
    assert all(h["Accept"] == lfs.LFS_MEDIA_TYPE for h in batch)
    downloads = server.downloads()
    assert downloads and all(h["Authorization"] == STORAGE_TOKEN for h in downloads)
    assert all("ghs_jobtoken" not in json.dumps(h) for h in downloads)


def test_the_job_token_goes_only_to_the_github_server(repos, server, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_jobtoken")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    _, full = lint(repos.full, capsys, monkeypatch)
    _, found = lint(repos.pointers, capsys, monkeypatch)
    assert found == full  # this LFS server needs no token
    assert server.batch_requests() and all("Authorization" not in h for h in server.batch_requests())


def test_off_by_default_outside_actions_with_a_warning_and_the_config_checks(repos, server, capsys, monkeypatch):
    code, found = lint(repos.pointers, capsys, monkeypatch)
    assert server.requests == []
    assert code == 1
    pointers = [f for f in found if f[0] == "AG110"]
    assert len(pointers) == len(repos.adapters)  # the PEFT adapter's too
    assert "AG102" not in {c for c, _, _ in found}  # a pointer is never a corrupt file
    message = next(m for c, p, m in pointers if p == "adapters/dora/adapter_config.json")
    assert "Git LFS pointer" in message and "--lfs-headers" in message
    assert 'git lfs pull --include="adapters/dora/adapters.safetensors"' in message
    # the config checks that need no tensors still run
    assert ("AG301", "adapters/dora/adapter_config.json",
            "num_layers is missing (mlx-lm raises AttributeError) and the weights cannot be read") in found


@pytest.mark.parametrize(
    "args, offline, reason",
    [
        (["--lfs-headers"], "1", "HF_HUB_OFFLINE is set, so the LFS server was not asked"),
        (["--no-lfs-headers"], None, "header fetching is turned off (--no-lfs-headers"),
    ],
)
def test_turned_off_even_in_actions(args, offline, reason, repos, server, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    code, found = lint(repos.pointers, capsys, monkeypatch, *args)
    assert server.requests == []
    warnings = [m for c, _, m in found if c == "AG110"]
    assert len(warnings) == len(repos.adapters)
    assert all(reason in m for m in warnings)


def test_pyproject_turns_it_on(repos, server, capsys, monkeypatch):
    (repos.pointers / "pyproject.toml").write_text("[tool.adapter-guard]\nlfs-headers = true\n")
    try:
        _, found = lint(repos.pointers, capsys, monkeypatch)
    finally:
        (repos.pointers / "pyproject.toml").unlink()
    assert found == lint(repos.full, capsys, monkeypatch)[1]


def test_every_weights_file_is_read_through_its_pointer(repos, server):
    """The one weights-header reader: the same header for every format's file name, PEFT's included."""
    fetch = lfs.choose(True, env={})
    names = set()
    for adapter in repos.adapters:
        if adapter.endswith("broken"):
            continue
        local, pointer = weights(repos.full, adapter), weights(repos.pointers, adapter)
        assert readers.read_weights_header(pointer, fetch) == read_header(local)
        names.add(local.name)
    assert names == {"adapters.safetensors", "adapter_model.safetensors"}


def test_a_pointer_is_never_a_corrupt_file_for_any_weights_name(repos, server):
    off = lfs.choose(None, env={})
    files = readers.read_adapter_files(
        repos.pointers / "adapters" / "peft", ("adapter_model.safetensors",), lfs_headers=off
    )
    read = files.weights["adapter_model.safetensors"]
    assert read.error is None and read.shapes is None
    assert read.not_fetched.startswith("`adapter_model.safetensors` is a Git LFS pointer")
    assert 'git lfs pull --include="adapters/peft/adapter_model.safetensors"' in read.not_fetched
    assert server.requests == []


def test_a_server_that_ignores_range_is_read_for_the_header_and_closed(repos, server, capsys, monkeypatch):
    full_code, full = lint(repos.full, capsys, monkeypatch)
    server.range_support = False
    fetcher = lfs.HeaderFetcher({})
    big_local = weights(repos.source, "adapters/big")
    big_pointer = lfs.read_pointer(weights(repos.pointers, "adapters/big"))
    header = fetcher.header(weights(repos.pointers, "adapters/big"), big_pointer)
    assert header == read_header(big_local)
    assert fetcher.bytes_received == 8 + header.header_size  # read no more than needed
    time.sleep(0.2)
    assert server.sent[big_pointer.oid] < big_pointer.size // 2  # closed long before the 32 MiB were sent
    assert len(server.downloads()) == 1  # one GET, read on past the first 8 bytes
    code, found = lint(repos.pointers, capsys, monkeypatch, "--lfs-headers")
    assert found == full


# -- a misbehaving server: a clear finding each, never a traceback or a hang -------------------


def _dora_findings(repos, capsys, monkeypatch) -> tuple[list[tuple[str, str, str]], float]:
    started = time.monotonic()
    code, found = lint(repos.pointers / "adapters" / "dora", capsys, monkeypatch, "--lfs-headers")
    assert code == 1
    return found, time.monotonic() - started


def _the_weights_finding(found) -> tuple[str, str]:
    [(code, message)] = [(c, m) for c, _, m in found if c in ("AG102", "AG110")]
    return code, message


@pytest.mark.parametrize(
    "fault, value, expected",
    [
        ("batch_status", 403, "refused access (HTTP 403)"),
        ("batch_status", 404, "answered HTTP 404: no such repository"),
        ("missing", "dora", "does not have the object (404: Object does not exist)"),
        ("download_status", 403, "refused access (HTTP 403); the link may have expired"),
        ("download_status", 404, "answered HTTP 404: the object is missing"),
        ("content_range", "bytes 0-7/999", "with Content-Range 'bytes 0-7/999', not bytes 0-7/10274"),
        ("content_range", "bytes 8-15/10274", "with Content-Range 'bytes 8-15/10274', not bytes 0-7/10274"),
        ("truncate", 3, "ended after 3 of 8 bytes"),
    ],
)
def test_a_failed_fetch_is_a_warning_that_says_why(fault, value, expected, repos, server, capsys, monkeypatch):
    if fault == "missing":
        value = {lfs.read_pointer(weights(repos.pointers, "adapters/dora")).oid}
    setattr(server, fault, value)
    found, _ = _dora_findings(repos, capsys, monkeypatch)
    code, message = _the_weights_finding(found)
    assert code == "AG110"
    assert expected in message
    assert "fetching it failed" in message and "git lfs pull" in message


def test_a_wrong_content_length_without_range_is_a_warning(repos, server, capsys, monkeypatch):
    server.range_support = False
    server.content_length = "99999999"
    code, message = _the_weights_finding(_dora_findings(repos, capsys, monkeypatch)[0])
    assert code == "AG110"
    assert "sent 99999999 bytes, but the pointer says the object has 10274" in message


def test_an_oversized_header_length_is_refused_before_reading_it(repos, server, capsys, monkeypatch):
    # The local reader's bound, with the pointer's size as the file size: nothing past the 8 bytes is asked for.
    server.prefix = (2**64 - 1).to_bytes(8, "little")
    code, message = _the_weights_finding(_dora_findings(repos, capsys, monkeypatch)[0])
    assert (code, message) == (
        "AG102", f"`adapters.safetensors`: header length {2**64 - 1} exceeds the file size (10274 bytes)"
    )
    assert [h["Range"] for h in server.downloads()] == ["bytes=0-7"]


def test_a_header_length_over_the_format_cap_is_refused(repos, server):
    # A pointer to a 200 MB object whose header claims 150 MB: refused by the header cap, unread.
    fetcher = lfs.HeaderFetcher({})
    size = 200_000_000
    data = (150_000_000).to_bytes(8, "little") + b"{}"
    oid = server.add(data)
    pointer = lfs.Pointer(oid, size)
    server.content_range = f"bytes 0-7/{size}"
    with pytest.raises(lfs.HeaderError, match=f"exceeds adapter-guard's {MAX_HEADER_BYTES}-byte limit"):
        fetcher.header(weights(repos.pointers, "adapters/dora"), pointer)
    assert fetcher.bytes_received == 8


@pytest.mark.parametrize("stall", ["stall", "stall_batch"])
def test_a_server_that_never_answers_times_out(stall, repos, server, capsys, monkeypatch):
    monkeypatch.setattr(lfs, "TIMEOUT_SECONDS", 0.5)
    setattr(server, stall, True)
    found, elapsed = _dora_findings(repos, capsys, monkeypatch)
    code, message = _the_weights_finding(found)
    assert code == "AG110"
    assert "timed out" in message
    assert elapsed < 5


def test_a_server_that_drips_bytes_is_cut_off_by_the_deadline(repos, server, capsys, monkeypatch):
    # Each byte arrives before the read timeout, so only the per-object deadline can stop it.
    monkeypatch.setattr(lfs, "TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(lfs, "DEADLINE_SECONDS", 1.0)
    server.drip = 0.3
    found, elapsed = _dora_findings(repos, capsys, monkeypatch)
    code, message = _the_weights_finding(found)
    assert code == "AG110"
    assert "took more than 1 s" in message
    assert elapsed < 5
