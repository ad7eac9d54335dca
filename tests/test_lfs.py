"""Git LFS pointers, the LFS server's URL, when headers are fetched, and with which credentials.

Pointers come from the real ``git lfs pointer``; the spec cases are the
examples and rules of git-lfs's ``docs/spec.md``; URL guesses are the examples
of ``docs/api/server-discovery.md``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from adapter_guard import lfs
from adapter_guard.cli import main
from adapter_guard.settings import SettingsError, resolve
from lfs_repo import git, git_env, require_git_lfs
from lfs_server import LfsServer

SPEC_OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Git with a HOME of its own, as the process environment too (the code under test runs git)."""
    require_git_lfs()
    home = tmp_path / "home"
    home.mkdir()
    environment = git_env(home)
    for key in ("GITHUB_ACTIONS", "GITHUB_TOKEN", "GITHUB_SERVER_URL", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setattr(lfs, "TIMEOUT_SECONDS", 2.0)
    return environment


def git_lfs_pointer(env, path: Path) -> bytes:
    return subprocess.run(
        ["git", "lfs", "pointer", f"--file={path}"], capture_output=True, env=env, check=True
    ).stdout


# -- recognising pointers ----------------------------------------------------------------


def test_pointers_made_by_git_lfs_are_recognised(env, tmp_path):
    save_file({"model.layers.0.self_attn.q_proj.lora_a": np.ones((8, 4), np.float32)}, str(tmp_path / "a.safetensors"))
    (tmp_path / "noise.bin").write_bytes(os.urandom(100_000))
    for source in (tmp_path / "a.safetensors", tmp_path / "noise.bin"):
        text = git_lfs_pointer(env, source)
        data = source.read_bytes()
        assert lfs.parse_pointer(text) == lfs.Pointer(hashlib.sha256(data).hexdigest(), len(data))
        (tmp_path / "pointer").write_bytes(text)
        assert lfs.read_pointer(tmp_path / "pointer") == lfs.parse_pointer(text)


def test_a_safetensors_file_is_not_a_pointer(tmp_path):
    save_file({"w": np.ones((2, 2), np.float32)}, str(tmp_path / "a.safetensors"))
    assert lfs.read_pointer(tmp_path / "a.safetensors") is None


def test_spec_example_and_legacy_version():
    spec = f"version https://git-lfs.github.com/spec/v1\noid sha256:{SPEC_OID}\nsize 12345\n".encode()
    assert lfs.parse_pointer(spec) == lfs.Pointer(SPEC_OID, 12345)
    legacy = spec.replace(b"git-lfs.github.com", b"hawser.github.com")
    assert lfs.parse_pointer(legacy) == lfs.Pointer(SPEC_OID, 12345)


def test_extension_keys_sort_before_oid():
    text = (
        "version https://git-lfs.github.com/spec/v1\n"
        f"ext-0-foo sha256:{'a' * 64}\n"
        f"oid sha256:{SPEC_OID}\nsize 7\n"
    ).encode()
    assert lfs.parse_pointer(text) == lfs.Pointer(SPEC_OID, 7)


@pytest.mark.parametrize(
    "text",
    [
        f"oid sha256:{SPEC_OID}\nversion https://git-lfs.github.com/spec/v1\nsize 1\n",  # version not first
        f"version https://git-lfs.github.com/spec/v1\nsize 1\noid sha256:{SPEC_OID}\n",  # keys not sorted
        f"version https://git-lfs.github.com/spec/v2\noid sha256:{SPEC_OID}\nsize 1\n",  # unknown version
        f"version https://git-lfs.github.com/spec/v1\noid sha512:{SPEC_OID}\nsize 1\n",  # only sha256
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{SPEC_OID[:-1]}\nsize 1\n",  # 63 digits
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{SPEC_OID.upper()}\nsize 1\n",
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{SPEC_OID}\nsize -1\n",
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{SPEC_OID}\n",  # no size
        f"version https://git-lfs.github.com/spec/v1\r\noid sha256:{SPEC_OID}\r\nsize 1\r\n",  # CRLF
        f"version  https://git-lfs.github.com/spec/v1\noid sha256:{SPEC_OID}\nsize 1\n",  # two spaces
        f"version https://git-lfs.github.com/spec/v1\nOid sha256:{SPEC_OID}\nsize 1\n",  # key case
    ],
)
def test_not_pointers(text):
    assert lfs.parse_pointer(text.encode()) is None


def test_a_pointer_is_at_most_1024_bytes(tmp_path):
    pad = "a" * 1024
    text = f"version https://git-lfs.github.com/spec/v1\next-0-pad {pad}\noid sha256:{SPEC_OID}\nsize 1\n"
    assert lfs.parse_pointer(text.encode()) is None
    (tmp_path / "big").write_text(text)
    assert lfs.read_pointer(tmp_path / "big") is None


def test_read_pointer_never_blocks_on_a_fifo_or_fails_on_a_directory(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    assert lfs.read_pointer(tmp_path / "fifo") is None
    assert lfs.read_pointer(tmp_path) is None
    assert lfs.read_pointer(tmp_path / "missing") is None


# -- where the LFS server is -----------------------------------------------------------------


@pytest.mark.parametrize(
    "remote, url",
    [  # docs/api/server-discovery.md, "Guessing the Server"
        ("https://git-server.com/foo/bar", "https://git-server.com/foo/bar.git/info/lfs"),
        ("https://git-server.com/foo/bar.git", "https://git-server.com/foo/bar.git/info/lfs"),
        ("git@git-server.com:foo/bar.git", "https://git-server.com/foo/bar.git/info/lfs"),
        ("ssh://git-server.com/foo/bar.git", "https://git-server.com/foo/bar.git/info/lfs"),
        ("https://huggingface.co/user/model", "https://huggingface.co/user/model.git/info/lfs"),
        ("/srv/git/models.git", None),
        ("file:///srv/git/models.git", None),
    ],
)
def test_lfs_url_guessed_from_the_remote(remote, url):
    assert lfs.lfs_url_from_remote(remote) == url


@pytest.fixture
def repo(env, tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git(env, root, "init", "-q")
    return root


def test_lfs_url_in_git_config_beats_lfsconfig_beats_the_remote(env, repo):
    git(env, repo, "remote", "add", "origin", "https://git-server.com/foo/bar")
    assert lfs.find_endpoint(repo) == lfs.Endpoint(
        "https://git-server.com/foo/bar.git/info/lfs", "the URL of remote 'origin'"
    )
    git(env, repo, "config", "remote.origin.lfsurl", "https://lfs-remote.example/x")
    assert lfs.find_endpoint(repo).url == "https://lfs-remote.example/x"
    git(env, repo, "config", "--file", ".lfsconfig", "lfs.url", "https://lfs-file.example/y")
    assert lfs.find_endpoint(repo) == lfs.Endpoint("https://lfs-file.example/y", "lfs.url in .lfsconfig")
    git(env, repo, "config", "lfs.url", "https://lfs-config.example/z")
    assert lfs.find_endpoint(repo) == lfs.Endpoint("https://lfs-config.example/z", "lfs.url in git config")


def test_credentials_in_the_url_are_used_but_never_shown(env, repo):
    git(env, repo, "config", "lfs.url", "https://user:secret@lfs.example/repo")
    endpoint = lfs.find_endpoint(repo)
    assert endpoint.url == "https://lfs.example/repo"
    assert endpoint.userinfo == "user:secret"
    assert "secret" not in repr(endpoint)


@pytest.mark.parametrize(
    "setup, message",
    [
        ([], "no LFS server: set lfs.url (git config or .lfsconfig) or add an HTTPS remote"),
        ([("remote", "add", "origin", "/srv/git/models.git")], "no LFS server for remote 'origin'"),
        ([("config", "lfs.url", "file:///etc")], "the LFS URL from lfs.url in git config is not an http(s) URL"),
    ],
)
def test_no_usable_lfs_server(setup, message, env, repo):
    for args in setup:
        git(env, repo, *args)
    with pytest.raises(lfs.FetchError) as caught:
        lfs.find_endpoint(repo)
    assert message in caught.value.message


def test_outside_a_git_repository_the_finding_says_so(env, tmp_path):
    pointer = lfs.Pointer(SPEC_OID, 12345)
    (tmp_path / "w").mkdir()
    with pytest.raises(lfs.FetchError, match="not inside a git repository"):
        lfs.HeaderFetcher({}).header(tmp_path / "w" / "adapters.safetensors", pointer)


# -- when headers are fetched ------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting, environment, on",
    [
        (None, {}, False),
        (True, {}, True),
        (None, {"GITHUB_ACTIONS": "true"}, True),
        (False, {"GITHUB_ACTIONS": "true"}, False),
        (True, {"HF_HUB_OFFLINE": "1"}, False),
        (None, {"GITHUB_ACTIONS": "true", "HF_HUB_OFFLINE": "YES"}, False),
        (True, {"HF_HUB_OFFLINE": "0"}, True),
    ],
)
def test_on_in_actions_opt_in_elsewhere_off_when_offline(setting, environment, on):
    choice = lfs.choose(setting, env=environment)
    assert (choice.fetcher is not None) == on
    assert bool(choice.off_reason) != on


def test_settings_from_pyproject_and_the_command_line(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.adapter-guard]\nlfs-headers = true\nlfs-credentials = true\n")
    settings = resolve({}, cwd=tmp_path)
    assert (settings.lfs_headers, settings.lfs_credentials) == (True, True)
    assert resolve({"lfs_headers": False}, cwd=tmp_path).lfs_headers is False
    (tmp_path / "pyproject.toml").write_text("[tool.adapter-guard]\nlfs-headers = \"yes\"\n")
    with pytest.raises(SettingsError, match="lfs-headers must be true or false"):
        resolve({}, cwd=tmp_path)


def test_the_run_makes_its_choice_once():
    settings = resolve({"lfs_headers": True}, cwd=Path("/"))
    assert settings.lfs() is settings.lfs()


# -- credentials: git's credential helper only when the user opts in ------------------------------


@pytest.fixture
def private_server(env, repo, tmp_path):
    """An LFS server that wants Basic u:p, a pointer committed in ``repo``, and a logging credential helper."""
    server = LfsServer()
    save_file({"model.layers.0.self_attn.q_proj.lora_a": np.ones((8, 4), np.float32)}, str(tmp_path / "w.safetensors"))
    server.add((tmp_path / "w.safetensors").read_bytes())
    (repo / "adapters.safetensors").write_bytes(git_lfs_pointer(env, tmp_path / "w.safetensors"))
    git(env, repo, "config", "lfs.url", server.url)
    server.batch_auth = "Basic " + base64.b64encode(b"u:p").decode()
    log = tmp_path / "helper.log"
    helper = f"!f() {{ echo \"$1\" >> {log}; echo username=u; echo password=p; }}; f"
    git(env, repo, "config", "--global", "credential.helper", helper)
    yield server, repo / "adapters.safetensors", log
    server.close()


def test_a_401_without_opt_in_asks_no_credential_helper(private_server):
    server, weights, log = private_server
    with pytest.raises(lfs.FetchError) as caught:
        lfs.HeaderFetcher({}).header(weights, lfs.read_pointer(weights))
    assert "needs credentials (HTTP 401); pass --lfs-credentials to use git's credential helper" in caught.value.message
    assert not log.exists()


def test_a_401_with_opt_in_is_answered_by_the_credential_helper(private_server, tmp_path):
    server, weights, log = private_server
    fetcher = lfs.HeaderFetcher({}, credentials=True)
    header = fetcher.header(weights, lfs.read_pointer(weights))
    assert list(header.tensors) == ["model.layers.0.self_attn.q_proj.lora_a"]
    assert log.read_text().split() == ["get"]
    assert [h.get("Authorization") for h in server.batch_requests()] == [None, server.batch_auth]


def test_the_cli_flag_turns_the_helper_on(private_server, capsys, monkeypatch):
    server, weights, log = private_server
    (weights.parent / "adapter_config.json").write_text('{"fine_tune_type": "full"}')
    monkeypatch.chdir(weights.parent)
    assert main(["--lfs-headers", "--lfs-credentials", "."]) == 0
    assert log.exists()
    assert main(["--lfs-headers", "."]) == 1
    assert "AG110" in capsys.readouterr().out


def test_refused_credentials_are_a_clear_finding(private_server):
    server, weights, log = private_server
    server.batch_auth = "Basic something-else"
    with pytest.raises(lfs.FetchError, match=r"refused the credentials \(HTTP 401\)"):
        lfs.HeaderFetcher({}, credentials=True).header(weights, lfs.read_pointer(weights))


def test_an_unreachable_server_is_asked_once_per_run(env, repo, tmp_path):
    server = LfsServer()
    url = server.url
    server.close()  # nothing listens there now
    git(env, repo, "config", "lfs.url", url)
    fetcher = lfs.HeaderFetcher({})
    for size in (100, 200):
        with pytest.raises(lfs.FetchError, match="no answer from"):
            fetcher.header(repo / "adapters.safetensors", lfs.Pointer(SPEC_OID[:-3] + f"{size:03d}", size))
    assert fetcher.requests == 1


# -- costs nothing when there is no pointer ------------------------------------------------------


def test_without_pointers_no_http_module_is_loaded(tmp_path):
    save_file({"model.layers.0.self_attn.q_proj.lora_a": np.ones((8, 4), np.float32),
               "model.layers.0.self_attn.q_proj.lora_b": np.ones((4, 8), np.float32)},
              str(tmp_path / "adapters.safetensors"))
    (tmp_path / "adapter_config.json").write_text('{"fine_tune_type": "lora", "num_layers": -1}')
    code = (
        "import sys\n"
        "from adapter_guard.cli import main\n"
        f"main([{str(tmp_path)!r}, '--lfs-headers', '--output-format', 'json'])\n"
        "print(sorted(m for m in ('urllib.request', 'http.client', 'ssl') if m in sys.modules),"
        " file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.stderr.strip().splitlines()[-1] == "[]"


# -- redirects ----------------------------------------------------------------------------------


def test_a_download_redirect_to_another_host_drops_the_authorization():
    import urllib.request

    opener = lfs._opener()
    [handler] = [h for h in opener.handlers if isinstance(h, urllib.request.HTTPRedirectHandler)]
    request = urllib.request.Request("https://lfs.example/o", headers={"Authorization": "RemoteAuth x", "X-Other": "1"})
    elsewhere = handler.redirect_request(request, None, 302, "Found", {}, "https://cdn.example/o")
    assert not elsewhere.has_header("Authorization") and elsewhere.get_header("X-other") == "1"
    same_host = handler.redirect_request(request, None, 302, "Found", {}, "https://lfs.example/p")
    assert same_host.get_header("Authorization") == "RemoteAuth x"
    batch = urllib.request.Request("https://lfs.example/b", data=b"{}", method="POST")
    assert handler.redirect_request(batch, None, 307, "Temporary Redirect", {}, "https://other.example/b") is None
