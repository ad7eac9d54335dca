"""A small GitHub API on 127.0.0.1 for tests, speaking only what adapter-guard uses.

It serves REST under ``/api/v3`` and GraphQL at ``/api/graphql``, like GitHub
Enterprise, so the tests also prove that GITHUB_API_URL is honoured. Like
GitHub it pages lists (``per_page``, ``page``, ``Link: rel="next"``),
authenticates every request, refuses writes with 403 for a read-only (fork)
token, answers 403 to ``GET /user`` for installation tokens (the Actions
GITHUB_TOKEN and GitHub App tokens alike), and rejects a whole review with
422 when one comment sits on a line outside the PR diff.

A pull request either has a fixed list of ``files`` or is backed by a real git
repository (``Pull.git``): then its files, ``patch`` and blob ``sha`` come
from ``git diff`` / ``git rev-parse`` between the base and head refs at
request time, so a test pushes by committing. A review comment on a git-backed
PR goes outdated (``line`` null, as GitHub reports it) when a later head no
longer shows the same text on the same lines.

What lines may carry a review comment is derived here from GitHub's
documentation of the diff, not from adapter-guard's code: see
``commentable_lines``.

    with FakeGitHub(files=[...]) as gh:
        client = Github(base_url=gh.api_url, auth=Auth.Token(gh.token), ...)
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/api/v3"
GRAPHQL = "/api/graphql"
BOT = "github-actions[bot]"
HEAD_SHA = "0123456789abcdef0123456789abcdef01234567"


def commentable_lines(patch: str) -> list[tuple[int, set[int]]]:
    """For each hunk of a file's ``patch``: (hunk number, the right-side line numbers it shows).

    From GitHub's REST docs on review comments: a comment's ``line`` is a line
    of the blob in the diff; ``side`` RIGHT means an addition or an unchanged
    line shown in the diff; a multi-line comment's ``start_line`` must be in
    the same hunk. A diff line is one "\\n"-terminated record of the patch
    (git's unit), whatever other characters it holds. The header
    ``@@ -a,b +c,d @@`` says the right side starts at line c and shows d lines.
    """
    hunks: list[tuple[int, set[int]]] = []
    records = patch.split("\n")
    i = 0
    while i < len(records):
        header = re.match(r"@@ -[0-9]+(?:,[0-9]+)? \+([0-9]+)(?:,([0-9]+))? @@", records[i])
        i += 1
        if not header:
            continue
        right, remaining = int(header[1]), int(header[2] or 1)
        shown: set[int] = set()
        # The header's count says how many right-side records follow; walk until it is used up.
        while remaining > 0 and i < len(records):
            record = records[i]
            i += 1
            if record.startswith("-") or record.startswith("\\"):
                continue
            shown.add(right)
            right += 1
            remaining -= 1
        hunks.append((len(hunks), shown))
    return hunks


def patch_lines(patch: str) -> set[int]:
    """Every right-side line a patch shows."""
    return set().union(*(lines for _, lines in commentable_lines(patch))) if patch else set()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          encoding="utf-8", errors="surrogateescape").stdout


@dataclass
class Identity:
    """Who a token is. ``user_endpoint``: GET /user answers (a user token), else 403 (installation token)."""

    login: str
    user_endpoint: bool = False
    #: GraphQL ``viewer`` answers (it does for user and installation tokens).
    viewer: bool = True
    #: Writes answer this status: 403 is a fork's read-only token.
    refuse_writes: int | None = None


@dataclass
class GitSource:
    """A PR backed by a git repository: files and patches from ``git diff base...head``."""

    repo: Path
    base: str
    head: str

    def head_sha(self) -> str:
        return git(self.repo, "rev-parse", self.head).strip()

    def files(self) -> list[dict[str, Any]]:
        base, head = self.base, self.head
        out = []
        for row in git(self.repo, "diff", "--no-renames", "--name-status", f"{base}...{head}").splitlines():
            status, name = row.split("\t", 1)
            diff = git(self.repo, "diff", "--no-renames", f"{base}...{head}", "--", name)
            patch = diff[diff.index("@@"):] if "@@" in diff else ""
            if patch.endswith("\n"):
                patch = patch[:-1]  # GitHub's patch field has no final newline
            sha = git(self.repo, "rev-parse", f"{head}:{name}").strip() if status != "D" else "0" * 40
            out.append({"filename": name, "status": {"A": "added", "M": "modified", "D": "removed"}[status[0]],
                        "patch": patch, "sha": sha})
        return out

    def text(self, sha: str, path: str) -> list[str]:
        try:
            return git(self.repo, "show", f"{sha}:{path}").split("\n")
        except subprocess.CalledProcessError:
            return []


@dataclass
class Pull:
    number: int
    head_sha: str = HEAD_SHA
    head_repo: str = ""
    state: str = "open"
    files: list[dict[str, Any]] = field(default_factory=list)
    git: GitSource | None = None
    #: Overrides how many files the PR changed (GitHub lists at most 3,000 of them).
    changed_files: int | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)
    review_comments: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)

    def current_head(self) -> str:
        return self.git.head_sha() if self.git else self.head_sha

    def current_files(self) -> list[dict[str, Any]]:
        return self.git.files() if self.git else self.files


@dataclass
class FakeGitHub:
    owner: str = "octo"
    repo: str = "adapters"
    number: int = 7
    head_sha: str = HEAD_SHA
    token: str = "ghs_FAKE0123456789abcdefSECRETtoken"
    #: The login that owns ``token``. With ``user_endpoint=False`` GET /user answers
    #: 403, as it does for installation tokens.
    login: str = BOT
    user_endpoint: bool = False
    viewer_endpoint: bool = True
    #: Answer every write with this status: 403 is a fork's read-only token. The
    #: error echoes the credentials, to prove adapter-guard redacts what it prints.
    refuse_writes: int | None = None
    refusal: str = "Resource not accessible by integration"
    #: The default PR's files: dicts with filename, status, patch, sha (and previous_filename).
    files: list[dict[str, Any]] = field(default_factory=list)
    #: Every request as (method, path with query).
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: node ids of minimised comments.
    minimized: set[str] = field(default_factory=set)
    #: GraphQL mutations, by name.
    mutations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1000)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.pulls: dict[int, Pull] = {
            self.number: Pull(self.number, self.head_sha, f"{self.owner}/{self.repo}", files=self.files)}
        #: Other tokens this server knows (the default token's identity comes from the fields above).
        self.identities: dict[str, Identity] = {}

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

    # -- the default PR, as the older tests see it ---------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in ("files", "head_sha") and "pulls" in self.__dict__:
            setattr(self.pull, name, value)

    @property
    def pull(self) -> Pull:
        return self.pulls[self.number]

    @property
    def comments(self) -> list[dict[str, Any]]:
        return self.pull.comments

    @property
    def review_comments(self) -> list[dict[str, Any]]:
        return self.pull.review_comments

    @property
    def reviews(self) -> list[dict[str, Any]]:
        return self.pull.reviews

    # -- test helpers ------------------------------------------------------------
    def identity(self, token: str) -> Identity | None:
        if token == self.token:
            return Identity(self.login, self.user_endpoint, self.viewer_endpoint, self.refuse_writes)
        return self.identities.get(token)

    def add_pull(self, pull: Pull) -> Pull:
        self.pulls[pull.number] = pull
        return pull

    def add_comment(self, body: str, login: str, number: int | None = None) -> dict[str, Any]:
        """Seed an issue comment on a PR, as if someone had posted it."""
        with self._lock:
            return self._new_comment(self.pulls[number or self.number], body, login)

    def comments_by(self, login: str, number: int | None = None) -> list[dict[str, Any]]:
        return [c for c in self.pulls[number or self.number].comments if c["user"]["login"] == login]

    def live_suggestions(self, login: str, number: int | None = None) -> list[dict[str, Any]]:
        """Review comments by ``login`` that GitHub would show as current: not outdated, not minimised."""
        pull = self.pulls[number or self.number]
        with self._lock:
            return [c for c in (self._review_comment_json(pull, c) for c in pull.review_comments)
                    if c["user"]["login"] == login and c["line"] is not None and c["node_id"] not in self.minimized]

    def add_review_comment(self, pull: Pull, **fields: Any) -> dict[str, Any]:
        with self._lock:
            cid = next(self._ids)
            comment = {"id": cid, "node_id": f"PRRC_{cid}", "in_reply_to_id": None, "start_line": None,
                       "pull_request_review_id": None, "commit_id": pull.current_head(),
                       "url": f"{self.api_url}{self.repo_path}/pulls/comments/{cid}", **fields}
            comment.setdefault("original_line", comment.get("line"))
            pull.review_comments.append(comment)
            return comment

    def writes(self) -> list[tuple[str, str]]:
        """REST writes and GraphQL mutations (a GraphQL query is a read, though it is a POST)."""
        rest = [r for r in self.requests if r[0] in ("POST", "PATCH", "PUT", "DELETE") and r[1] != GRAPHQL]
        return rest + [("MUTATION", name) for name in self.mutations]

    # -- JSON shapes ---------------------------------------------------------------
    def _new_comment(self, pull: Pull, body: str, login: str) -> dict[str, Any]:
        cid = next(self._ids)
        comment = {
            "id": cid,
            "node_id": f"IC_{cid}",
            "body": body,
            "user": {"login": login, "type": "Bot" if login.endswith("[bot]") else "User"},
            "url": f"{self.api_url}{self.repo_path}/issues/comments/{cid}",
            "html_url": f"https://github.example/{self.owner}/{self.repo}/pull/{pull.number}#issuecomment-{cid}",
        }
        pull.comments.append(comment)
        return comment

    def _repo_json(self, full_name: str | None = None) -> dict[str, Any]:
        full_name = full_name or f"{self.owner}/{self.repo}"
        owner, name = full_name.split("/")
        return {"id": hash(full_name) & 0xFFFF, "name": name, "full_name": full_name, "owner": {"login": owner},
                "url": f"{self.api_url}/repos/{full_name}"}

    def _pull_json(self, pull: Pull) -> dict[str, Any]:
        base = f"{self.api_url}{self.repo_path}/pulls/{pull.number}"
        files = pull.current_files()
        return {
            "id": 70 + pull.number,
            "number": pull.number,
            "state": pull.state,
            "url": base,
            "issue_url": f"{self.api_url}{self.repo_path}/issues/{pull.number}",
            "html_url": f"https://github.example/{self.owner}/{self.repo}/pull/{pull.number}",
            "changed_files": pull.changed_files if pull.changed_files is not None else len(files),
            "head": {"sha": pull.current_head(), "ref": "feature", "repo": self._repo_json(pull.head_repo)},
            "base": {"ref": "main", "repo": self._repo_json()},
        }

    def _review_comment_json(self, pull: Pull, comment: dict[str, Any]) -> dict[str, Any]:
        """As GitHub reports a review comment now: ``line`` is null once outdated."""
        out = dict(comment)
        if pull.git and comment.get("line") is not None and comment["commit_id"] != pull.current_head():
            start = comment.get("start_line") or comment["line"]
            then = pull.git.text(comment["commit_id"], comment["path"])[start - 1 : comment["line"]]
            now = pull.git.text(pull.current_head(), comment["path"])[start - 1 : comment["line"]]
            shown = {f["filename"]: patch_lines(f.get("patch") or "") for f in pull.current_files()}
            span = set(range(start, comment["line"] + 1))
            if then != now or not span <= shown.get(comment["path"], set()):
                out["line"] = None
                out["start_line"] = None
        return out


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
        token = auth.split(" ", 1)[1] if auth.startswith(("token ", "Bearer ")) else ""
        who = fake.identity(token)
        if who is None:
            return self._send(401, {"message": "Bad credentials"})
        if path == GRAPHQL and method == "POST":
            with fake._lock:
                return self._graphql(fake, who, self._body())
        if not path.startswith(PREFIX):
            return self._send(404, {"message": "Not Found"})
        route = path[len(PREFIX) :]
        if method != "GET" and who.refuse_writes:
            return self._send(who.refuse_writes, {"message": f"{fake.refusal} ({auth})"})
        with fake._lock:
            return self._route(fake, who, method, route, path, query)

    def _graphql(self, fake: FakeGitHub, who: Identity, request: dict[str, Any]) -> None:
        query = request.get("query", "")
        if re.fullmatch(r"\s*query\s*\{\s*viewer\s*\{\s*login\s*\}\s*\}\s*", query):
            if not who.viewer:
                return self._send(403, {"message": "Resource not accessible by integration"})
            return self._send(200, {"data": {"viewer": {"login": who.login}}})
        if "minimizeComment" in query:
            fake.mutations.append("minimizeComment")
            if who.refuse_writes:
                return self._send(200, {"errors": [{"type": "FORBIDDEN", "message": fake.refusal}]})
            subject = request["variables"]["input"]["subjectId"]
            for pull in fake.pulls.values():
                for comment in pull.review_comments + pull.comments:
                    if comment["node_id"] == subject:
                        if comment["user"]["login"] != who.login:
                            return self._send(200, {"errors": [{"type": "FORBIDDEN", "message": "not yours"}]})
                        fake.minimized.add(subject)
                        return self._send(200, {"data": {"minimizeComment": {"clientMutationId": None}}})
            return self._send(200, {"errors": [{"type": "NOT_FOUND", "message": "no such node"}]})
        return self._send(200, {"errors": [{"message": f"the fake does not answer {query!r}"}]})

    def _route(self, fake: FakeGitHub, who: Identity, method: str, route: str, path: str, query) -> None:
        repo = fake.repo_path
        if (method, route) == ("GET", "/user"):
            if not who.user_endpoint:
                return self._send(403, {"message": "Resource not accessible by integration"})
            return self._send(200, {"login": who.login, "type": "User"})
        if (method, route) == ("GET", repo):
            return self._send(200, fake._repo_json())
        match = re.fullmatch(rf"{re.escape(repo)}/(pulls|issues)/(\d+)(/.*)?", route)
        pull = fake.pulls.get(int(match[2])) if match else None
        if match and pull is None:
            return self._send(404, {"message": "Not Found"})
        rest = (match[1], match[3] or "") if match else None
        if rest == ("pulls", "") and method == "GET":
            return self._send(200, fake._pull_json(pull))
        if rest == ("pulls", "/files") and method == "GET":
            return self._page(pull.current_files()[:3000], path, query)
        if rest == ("issues", "/comments") and method == "GET":
            return self._page(pull.comments, path, query)
        if rest == ("issues", "/comments") and method == "POST":
            return self._send(201, fake._new_comment(pull, self._body()["body"], who.login))
        if rest == ("pulls", "/comments") and method == "GET":
            return self._page([fake._review_comment_json(pull, c) for c in pull.review_comments], path, query)
        if rest == ("pulls", "/reviews") and method == "POST":
            return self._create_review(fake, who, pull, self._body())
        match = re.fullmatch(rf"{re.escape(repo)}/(issues|pulls)/comments/(\d+)", route)
        if match and method == "PATCH":
            store = "comments" if match[1] == "issues" else "review_comments"
            found = [(p, c) for p in fake.pulls.values() for c in getattr(p, store) if c["id"] == int(match[2])]
            if not found:
                return self._send(404, {"message": "Not Found"})
            pull, comment = found[0]
            if comment["user"]["login"] != who.login:
                return self._send(403, {"message": "You cannot edit someone else's comment"})
            comment["body"] = self._body()["body"]
            return self._send(200, comment if store == "comments" else fake._review_comment_json(pull, comment))
        match = re.fullmatch(rf"{re.escape(repo)}/commits/([0-9a-f]+)", route)
        if match and method == "GET":
            heads = {p.current_head() for p in fake.pulls.values()}
            if match[1] not in heads:
                return self._send(404, {"message": "No commit found for SHA"})
            return self._send(200, {"sha": match[1], "url": f"{fake.api_url}{route}"})
        return self._send(404, {"message": f"Not Found: {method} {route}"})

    def _create_review(self, fake: FakeGitHub, who: Identity, pull: Pull, review: dict[str, Any]) -> None:
        commit = review.get("commit_id") or pull.current_head()
        if commit != pull.current_head():
            # Review comments on an older commit are placed by that commit's diff; the fake only knows the head's.
            return self._send(422, {"message": "Unprocessable Entity", "errors": ["commit_id is not the head"]})
        hunks = {f["filename"]: commentable_lines(f.get("patch") or "") for f in pull.current_files()}
        for comment in review.get("comments", []):
            span = set(range(comment.get("start_line", comment["line"]), comment["line"] + 1))
            in_one_hunk = any(span <= lines for _, lines in hunks.get(comment["path"], []))
            if comment.get("side", "RIGHT") != "RIGHT" or not in_one_hunk:
                # GitHub rejects the whole review for one line outside the diff.
                return self._send(422, {"message": "Unprocessable Entity",
                                        "errors": ["Line could not be resolved"]})
        review_id = next(fake._ids)
        pull.reviews.append({**review, "id": review_id, "user": {"login": who.login}})
        for comment in review.get("comments", []):
            fake.add_review_comment(
                pull, pull_request_review_id=review_id, path=comment["path"], line=comment["line"],
                start_line=comment.get("start_line"), body=comment["body"], user={"login": who.login},
                commit_id=commit)
        return self._send(200, {"id": review_id, "body": review.get("body", ""), "state": "COMMENTED",
                                "commit_id": commit, "user": {"login": who.login}})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")
