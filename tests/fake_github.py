"""A small GitHub REST server on 127.0.0.1 for tests, speaking only the endpoints adapter-guard uses.

It serves under ``/api/v3`` like GitHub Enterprise, so the tests also prove
that GITHUB_API_URL is honoured. Like GitHub it pages lists (``per_page``,
``page``, ``Link: rel="next"``), authenticates every request, refuses writes
with 403 for a read-only (fork) token, and rejects a whole review with 422
when one comment sits on a line outside the PR diff.

    with FakeGitHub(files=[...]) as gh:
        client = Github(base_url=gh.api_url, auth=Auth.Token(gh.token), ...)
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/api/v3"
BOT = "github-actions[bot]"
HEAD_SHA = "0123456789abcdef0123456789abcdef01234567"


def patch_lines(patch: str) -> set[int]:
    """The new-file lines a patch shows (what GitHub accepts review comments on)."""
    lines: set[int] = set()
    new_no = 0
    for line in patch.splitlines():
        match = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@", line)
        if match:
            new_no = int(match[1])
        elif line[:1] in (" ", "+"):
            lines.add(new_no)
            new_no += 1
    return lines


@dataclass
class FakeGitHub:
    owner: str = "octo"
    repo: str = "adapters"
    number: int = 7
    head_sha: str = HEAD_SHA
    token: str = "ghs_FAKE0123456789abcdefSECRETtoken"
    #: The login that owns ``token``. With ``user_endpoint=False`` GET /user answers
    #: 403, as it does for the Actions GITHUB_TOKEN (an installation token).
    login: str = BOT
    user_endpoint: bool = False
    #: Answer every write with this status: 403 is a fork's read-only token. The
    #: error echoes the credentials, to prove adapter-guard redacts what it prints.
    refuse_writes: int | None = None
    refusal: str = "Resource not accessible by integration"
    #: PR files: dicts with filename, status, patch (and previous_filename).
    files: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    review_comments: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    #: Every request as (method, path with query).
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------
    def __enter__(self) -> FakeGitHub:
        fake = self

        class Handler(_Handler):
            server_state = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def root(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.root + PREFIX

    @property
    def repo_path(self) -> str:
        return f"/repos/{self.owner}/{self.repo}"

    # -- test helpers ------------------------------------------------------------
    def add_comment(self, body: str, login: str) -> dict[str, Any]:
        """Seed an issue comment on the PR, as if someone had posted it."""
        with self._lock:
            return self._new_comment(body, login)

    def comments_by(self, login: str) -> list[dict[str, Any]]:
        return [c for c in self.comments if c["user"]["login"] == login]

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in ("POST", "PATCH", "PUT", "DELETE")]

    # -- JSON shapes ---------------------------------------------------------------
    def _new_comment(self, body: str, login: str) -> dict[str, Any]:
        cid = next(self._ids)
        comment = {
            "id": cid,
            "body": body,
            "user": {"login": login, "type": "Bot" if login.endswith("[bot]") else "User"},
            "url": f"{self.api_url}{self.repo_path}/issues/comments/{cid}",
            "html_url": f"https://github.example/{self.owner}/{self.repo}/pull/{self.number}#issuecomment-{cid}",
        }
        self.comments.append(comment)
        return comment

    def _repo_json(self) -> dict[str, Any]:
        return {
            "id": 1,
            "name": self.repo,
            "full_name": f"{self.owner}/{self.repo}",
            "owner": {"login": self.owner},
            "url": f"{self.api_url}{self.repo_path}",
        }

    def _pull_json(self) -> dict[str, Any]:
        return {
            "id": 70,
            "number": self.number,
            "state": "open",
            "url": f"{self.api_url}{self.repo_path}/pulls/{self.number}",
            "issue_url": f"{self.api_url}{self.repo_path}/issues/{self.number}",
            "html_url": f"https://github.example/{self.owner}/{self.repo}/pull/{self.number}",
            "head": {"sha": self.head_sha, "ref": "feature"},
        }


class _Handler(BaseHTTPRequestHandler):
    server_state: FakeGitHub

    def log_message(self, format, *args) -> None:  # keep test output clean
        pass

    # -- plumbing ----------------------------------------------------------------
    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _page(self, items: list[Any], path: str, query: dict[str, list[str]]) -> None:
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            last = (len(items) + per_page - 1) // per_page
            base = f"{self.server_state.root}{path}"
            headers["Link"] = (
                f'<{base}?per_page={per_page}&page={page + 1}>; rel="next", '
                f'<{base}?per_page={per_page}&page={last}>; rel="last"'
            )
        self._send(200, chunk, headers)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _handle(self, method: str) -> None:
        fake = self.server_state
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        with fake._lock:
            fake.requests.append((method, self.path))
        auth = self.headers.get("Authorization", "")
        if auth not in (f"token {fake.token}", f"Bearer {fake.token}"):
            return self._send(401, {"message": "Bad credentials"})
        if not path.startswith(PREFIX):
            return self._send(404, {"message": "Not Found"})
        route = path[len(PREFIX) :]
        if method != "GET" and fake.refuse_writes:
            return self._send(fake.refuse_writes, {"message": f"{fake.refusal} ({auth})"})
        with fake._lock:
            return self._route(fake, method, route, path, query)

    def _route(self, fake: FakeGitHub, method: str, route: str, path: str, query) -> None:
        repo, pull = fake.repo_path, f"{fake.repo_path}/pulls/{fake.number}"
        if (method, route) == ("GET", "/user"):
            if not fake.user_endpoint:
                return self._send(403, {"message": "Resource not accessible by integration"})
            return self._send(200, {"login": fake.login, "type": "User"})
        if (method, route) == ("GET", repo):
            return self._send(200, fake._repo_json())
        if (method, route) == ("GET", pull):
            return self._send(200, fake._pull_json())
        if (method, route) == ("GET", f"{pull}/files"):
            return self._page(fake.files, path, query)
        if (method, route) == ("GET", f"{repo}/issues/{fake.number}/comments"):
            return self._page(fake.comments, path, query)
        if (method, route) == ("POST", f"{repo}/issues/{fake.number}/comments"):
            return self._send(201, fake._new_comment(self._body()["body"], fake.login))
        match = re.fullmatch(rf"{re.escape(repo)}/issues/comments/(\d+)", route)
        if match and method == "PATCH":
            comment = next((c for c in fake.comments if c["id"] == int(match[1])), None)
            if comment is None:
                return self._send(404, {"message": "Not Found"})
            if comment["user"]["login"] != fake.login:
                return self._send(403, {"message": "You cannot edit someone else's comment"})
            comment["body"] = self._body()["body"]
            return self._send(200, comment)
        if (method, route) == ("GET", f"{pull}/comments"):
            return self._page(fake.review_comments, path, query)
        match = re.fullmatch(rf"{re.escape(repo)}/commits/([0-9a-f]+)", route)
        if match and method == "GET":
            if match[1] != fake.head_sha:
                return self._send(404, {"message": "No commit found for SHA"})
            return self._send(200, {"sha": fake.head_sha, "url": f"{fake.api_url}{route}"})
        if (method, route) == ("POST", f"{pull}/reviews"):
            return self._create_review(fake, self._body())
        return self._send(404, {"message": f"Not Found: {method} {route}"})

    def _create_review(self, fake: FakeGitHub, review: dict[str, Any]) -> None:
        shown = {f["filename"]: patch_lines(f.get("patch") or "") for f in fake.files}
        for comment in review.get("comments", []):
            lines = set(range(comment.get("start_line", comment["line"]), comment["line"] + 1))
            if comment.get("side", "RIGHT") != "RIGHT" or not lines <= shown.get(comment["path"], set()):
                # GitHub rejects the whole review for one line outside the diff.
                return self._send(422, {"message": "Unprocessable Entity",
                                        "errors": ["Line could not be resolved"]})
        review_id = next(fake._ids)
        fake.reviews.append(review)
        for comment in review.get("comments", []):
            fake.review_comments.append({
                "id": next(fake._ids),
                "pull_request_review_id": review_id,
                "path": comment["path"],
                "line": comment["line"],
                "body": comment["body"],
                "user": {"login": fake.login},
            })
        return self._send(200, {"id": review_id, "body": review.get("body", ""), "state": "COMMENTED",
                                "commit_id": review.get("commit_id"), "user": {"login": fake.login}})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")
