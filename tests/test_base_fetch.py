"""--fetch-base-config: only the base's config.json, from the endpoint HF_ENDPOINT names.

The Hub here is a local HTTP server on 127.0.0.1 that answers as the Hub's file
endpoint does for huggingface_hub (read from huggingface_hub's file_download.py
and utils/_http.py): ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}``;
a found file carries ``X-Repo-Commit`` (the commit hash), ``ETag`` and
``Content-Length``; a missing repository is a 404 with ``X-Error-Code: RepoNotFound``.
It records every request, so a test can prove what was, and was not, asked.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adapter_guard.cli import main

from test_base import lint, num_layers, only, repo, write_adapter  # noqa: F401  (repo: the fixture)

pytest.importorskip("huggingface_hub", reason="the [hub] extra is part of the test install")

COMMIT = "c" * 40
#: repo id -> the config.json the fake Hub serves for it (at every revision).
HUB_FILES = {"org/tiny": {"model_type": "llama", "num_hidden_layers": 4}}


class FakeHub(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, str | None]]

    def _answer(self, with_body: bool) -> None:
        self.requests.append((self.command, self.path, self.headers.get("Authorization")))
        parts = self.path.split("/")  # "", org, name, "resolve", revision, filename
        repo_id = "/".join(parts[1:3])
        if len(parts) != 6 or parts[3] != "resolve" or repo_id not in HUB_FILES:
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(HUB_FILES[repo_id]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha1(body).hexdigest()}"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802 (http.server's naming)
        self._answer(with_body=False)

    def do_GET(self):  # noqa: N802
        self._answer(with_body=True)

    def log_message(self, *args):
        pass


@pytest.fixture
def hub(repo, tmp_path, monkeypatch):
    """A fake Hub on 127.0.0.1 that HF_ENDPOINT points at; online, empty cache."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    handler = type("Hub", (FakeHub,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    yield handler.requests
    server.shutdown()
    server.server_close()




def test_fetch_base_config_fetches_config_json_only_and_proves_num_layers(repo, hub, capsys):
    adapter = write_adapter(repo / "adapter", model="org/tiny")
    code, findings = lint(["--fix", "--fetch-base-config", str(adapter)], capsys)
    assert code == 0 and num_layers(adapter) == 2
    assert {path for _, path, _ in hub} == {"/org/tiny/resolve/main/config.json"}
    assert "`org/tiny` fetched from http://127.0.0.1:" in only(findings, "AG301")["message"]


def test_the_fetched_config_is_cached_and_not_fetched_again(repo, hub, capsys):
    first = write_adapter(repo / "first", model="org/tiny")
    second = write_adapter(repo / "second", model="org/tiny")
    assert main(["--fix", "--fetch-base-config", str(first), str(second)]) == 0
    asked = len(hub)
    assert asked and num_layers(first) == num_layers(second) == 2
    assert len([r for r in hub if r[0] == "GET"]) == 1  # two adapters, one download

    third = write_adapter(repo / "third", model="org/tiny")
    assert main(["--fix", "--fetch-base-config", str(third)]) == 0
    assert num_layers(third) == 2 and len(hub) == asked  # from the cache, no request


def test_without_the_option_nothing_is_requested(repo, hub, capsys):
    adapter = write_adapter(repo / "adapter", model="org/tiny")
    assert main(["--fix", str(adapter)]) == 1
    assert hub == [] and num_layers(adapter) == "absent"


def test_pyproject_fetch_base_config_turns_it_on(repo, hub, capsys):
    (repo / "pyproject.toml").write_text("[tool.adapter-guard]\nfetch-base-config = true\n")
    adapter = write_adapter(repo / "adapter", model="org/tiny")
    assert main(["--fix", str(adapter)]) == 0
    assert num_layers(adapter) == 2 and hub


def test_hf_hub_offline_makes_no_request_and_says_so(repo, hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    adapter = write_adapter(repo / "adapter", model="org/tiny")
    code, findings = lint(["--fix", "--fetch-base-config", str(adapter)], capsys)
    assert hub == []
    assert code == 1 and num_layers(adapter) == "absent"
    assert "HF_HUB_OFFLINE is set" in only(findings, "AG311")["message"]


def test_hf_token_is_sent(repo, hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    adapter = write_adapter(repo / "adapter", model="org/tiny")
    assert main(["--fix", "--fetch-base-config", str(adapter)]) == 0
    assert {auth for _, _, auth in hub} == {"Bearer hf_test_token"}


def test_the_revision_the_config_names_is_fetched(repo, hub, capsys):
    adapter = write_adapter(repo / "adapter", model="org/tiny", base_model_revision="v2")
    assert main(["--fix", "--fetch-base-config", str(adapter)]) == 0
    assert {path for _, path, _ in hub} == {"/org/tiny/resolve/v2/config.json"}


def test_a_missing_repository_is_a_warning_not_a_crash(repo, hub, capsys):
    adapter = write_adapter(repo / "adapter", model="org/gone")
    code, findings = lint(["--fix", "--fetch-base-config", str(adapter)], capsys)
    assert code == 1 and num_layers(adapter) == "absent"
    warning = only(findings, "AG311")
    assert warning["severity"] == "warning"
    assert "could not get `org/gone`'s config.json: RepositoryNotFoundError" in warning["message"]
    assert "fetching `org/gone`'s config.json failed" in only(findings, "AG301")["message"]


def test_an_unreachable_endpoint_fails_fast_with_a_warning(repo, monkeypatch, capsys):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    adapter = write_adapter(repo / "adapter", model="org/tiny")
    start = time.monotonic()
    code, findings = lint(["--fix", "--fetch-base-config", str(adapter)], capsys)
    assert time.monotonic() - start < 10  # no minute of retries
    assert code == 1 and "ConnectError" in only(findings, "AG311")["message"]


def test_after_a_fetch_the_next_adapter_of_the_run_finds_the_base_in_the_local_cache(repo, hub, capsys):
    """The run keeps its cache lookups, but a download changes the cache: the second adapter
    names the base as found in the local cache, as it would with no lookup kept."""
    first = write_adapter(repo / "a-first", model="org/tiny")
    second = write_adapter(repo / "b-second", model="org/tiny")
    code, findings = lint(["--fetch-base-config", str(first), str(second)], capsys)
    messages = {f["path"].split("/")[-2]: f["message"] for f in findings if f["code"] == "AG301"}
    assert "`org/tiny` fetched from http://127.0.0.1:" in messages["a-first"]
    assert "`org/tiny` in the local Hugging Face cache" in messages["b-second"]
