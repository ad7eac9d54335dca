"""The one sticky PR comment, and review suggestions for lines in the PR diff.

The comment carries a hidden marker. It is found again by marker *and*
author (all pages of comments are read), and edited in place on every push;
other users' comments are never touched, however alike they look. The author
is whoever the token is, asked of the API (``GET /user``, else GraphQL
``viewer``, which also answers for App installation tokens), never guessed
from the token's prefix. A clean run edits an existing comment to say so,
and posts nothing when there was none.

Fixable changes go into the comment as a ```diff block per file. Those whose
lines the PR diff shows are also posted as one review with ```suggestion
blocks: a single comment on a line outside the diff makes GitHub reject the
whole review (422), so such changes stay in the sticky comment only.

A suggestion replaces lines of the PR head, so it is only posted when the
checked-out file *is* the head's: its git blob SHA must equal the ``sha`` that
``pulls/{n}/files`` gives (the default ``actions/checkout`` of a pull request
is a merge commit, whose lines differ when the base changed the same file),
and the PR head must not have moved while we ran. Already-posted suggestions
are matched on path, line and a fingerprint of the change; ours that no
longer apply, and have no replies, are retired (body replaced, comment
minimised), so the PR has at most one live adapter-guard review.

With a read-only token (a pull request from a fork) the API answers 403 or
404. The run does not fail: the body and PR number are written to files and
step outputs, for a ``workflow_run`` job to post (see post_artifact.py).

The token is never printed: messages are redacted and PyGithub's debug log is
filtered while we talk to the API.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .. import __version__
from ..findings import FileResult
from ..reporters.github import escape_data
from ..reporters.markdown import COMMENT_MARKER, fence, render_comment
from ..reporters.markdown import escape as markdown_escape
from . import diff as difflines
from .env import ContextError, PullRequestContext, read_pull_request, redact, repo_relative, write_outputs

#: Every review comment we post starts with this (the fingerprint follows).
SUGGESTION_MARKER = "<!-- adapter-guard:suggestion"
#: A suggestion we withdrew: its body no longer holds a suggestion block.
RETIRED_MARKER = "<!-- adapter-guard:retired -->"
#: Who writes comments with the Actions GITHUB_TOKEN, when the API cannot say.
DEFAULT_BOT_LOGIN = "github-actions[bot]"
#: The login our comments appear under, when the API cannot tell (rarely needed).
AUTHOR_ENV = "ADAPTER_GUARD_COMMENT_AUTHOR"
#: A GitHub App's slug: its comments appear under ``<slug>[bot]``.
APP_SLUG_ENV = "ADAPTER_GUARD_APP_SLUG"
#: Comments per review: more trips GitHub's secondary rate limits; the rest stay in the comment's diffs.
MAX_REVIEW_COMMENTS = 20
CONFIG_NAME = "adapter_config.json"
BODY_FILE = "comment.md"
NUMBER_FILE = "pr-number"
_READ_ONLY = (403, 404)


@dataclass
class CommentOutcome:
    """What happened to the PR comment.

    ``status`` is one of: ``created``, ``updated``, ``unchanged``, ``clean``
    (nothing to report and no earlier comment to correct), ``saved`` (read-only
    token: body written to files for an artifact), ``skipped`` (not a pull
    request run) or ``failed``.
    """

    status: str
    message: str = ""
    comment_url: str = ""
    pr_number: int | None = None
    review_comments: int = 0
    artifact_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


MISSING_PYGITHUB = "the GitHub features need PyGithub: pip install 'adapter-guard[github]'"


def have_pygithub() -> bool:
    try:
        import github  # noqa: F401
    except ImportError:
        return False
    return True


def make_client(api_url: str, token: str, **options: Any):
    """A PyGithub client for ``api_url`` (GitHub Enterprise works the same)."""
    from github import Auth, Github

    return Github(base_url=api_url, auth=Auth.Token(token), **options)


class _Redact(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = redact(message, self.secret), ()
        return True


@contextlib.contextmanager
def redacted_logs(secret: str) -> Iterator[None]:
    # Filters do not inherit: attach to each logger that may echo a response.
    loggers = [logging.getLogger(name) for name in ("github", "github.Requester", "github.GithubRetry",
                                                     "urllib3.connectionpool")]
    filt = _Redact(secret)
    for logger in loggers:
        logger.addFilter(filt)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(filt)


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def describe(exc: BaseException) -> str:
    """A one-line reason: ``HTTP 500: message`` for API errors, the exception otherwise."""
    status, data = _status(exc), getattr(exc, "data", None)
    if status is not None:
        message = data.get("message") if isinstance(data, dict) else None
        return f"HTTP {status}: {message}" if message else f"HTTP {status}"
    return f"{type(exc).__name__}: {exc}"


def comment_author(client, env: Mapping[str, str]) -> str:
    """The login our comments appear under, to find the sticky comment again.

    Asked of the API: ``GET /user`` answers for user tokens; installation
    tokens (the Actions GITHUB_TOKEN and GitHub App tokens alike, both
    ``ghs_``) get 403 there, and GraphQL ``viewer`` answers instead. Only when
    neither answers: the configured login or app slug, else github-actions[bot].
    """
    from github import GithubException

    try:
        return client.get_user().login
    except GithubException as exc:
        if _status(exc) not in _READ_ONLY:
            raise
    try:
        _headers, data = client.requester.graphql_query("query { viewer { login } }", {})
        login = ((data.get("data") or {}).get("viewer") or {}).get("login")
        if isinstance(login, str) and login:
            return login
    except GithubException as exc:
        if _status(exc) not in (*_READ_ONLY, 400, 401):
            raise
    if env.get(AUTHOR_ENV):
        return env[AUTHOR_ENV]
    if env.get(APP_SLUG_ENV):
        return f"{env[APP_SLUG_ENV]}[bot]"
    return DEFAULT_BOT_LOGIN


def find_sticky_comment(comments: Iterable, login: str):
    """The first comment by ``login`` that carries the marker, or None (reads every page)."""
    for comment in comments:
        user = comment.user
        if user is not None and user.login == login and COMMENT_MARKER in (comment.body or ""):
            return comment
    return None


def upsert_sticky_comment(pr, body: str, login: str, *, clean: bool) -> tuple[str, str]:
    """Create or edit the one sticky comment; returns (status, html_url)."""
    existing = find_sticky_comment(pr.get_issue_comments(), login)
    if existing is None:
        if clean:
            return "clean", ""
        return "created", pr.create_issue_comment(body).html_url
    if existing.body == body:
        return "unchanged", existing.html_url
    existing.edit(body)
    return "updated", existing.html_url


def git_blob_sha(data: bytes, *, hex_length: int = 40) -> str:
    """The object name git gives ``data`` as a blob (``git hash-object``): SHA-1, or SHA-256 in a SHA-256 repository."""
    digest = hashlib.sha1 if hex_length == 40 else hashlib.sha256
    return digest(b"blob %d\0" % len(data) + data).hexdigest()


def fingerprint(path: str, suggestion: difflines.Suggestion) -> str:
    text = "\0".join([path, str(suggestion.start), str(suggestion.end), "\n".join(suggestion.lines)])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _review_comment(path: str, suggestion: difflines.Suggestion, codes: str) -> dict[str, Any]:
    body = (f"{SUGGESTION_MARKER} {fingerprint(path, suggestion)} -->\n**adapter-guard** suggests ({codes}):\n\n"
            + fence("\n".join(suggestion.lines), "suggestion"))
    comment: dict[str, Any] = {"path": path, "body": body, "line": suggestion.end, "side": "RIGHT"}
    if suggestion.start != suggestion.end:
        comment.update(start_line=suggestion.start, start_side="RIGHT")
    return comment


@dataclass
class ReviewPlan:
    """The suggestion comments to post, and why others were not."""

    comments: list[dict[str, Any]]
    notes: list[str]
    left_out: int = 0


def plan_review(results: Sequence[FileResult], pr_files: Sequence, root: Path) -> ReviewPlan:
    """Suggestion comments for the fix lines that the PR diff shows, on the PR head's lines.

    ``pr_files`` are the PR's files (``filename``, ``patch``, ``sha``). A file
    whose checked-out bytes are not the head's blob gets no suggestion: its line
    numbers would be the checkout's, not the head's. Lines outside the diff are
    dropped here: they stay in the sticky comment. At most MAX_REVIEW_COMMENTS.
    """
    by_name = {f.filename: f for f in pr_files}
    comments: list[dict[str, Any]] = []
    notes: list[str] = []
    for result in results:
        if not result.diff or result.written:  # a written file's diff is applied, not suggested
            continue
        path = repo_relative(result.path, root)
        if path is None or path not in by_name:
            continue
        head_sha = by_name[path].sha or ""
        try:
            local = git_blob_sha((root / path).read_bytes(), hex_length=len(head_sha) if len(head_sha) == 64 else 40)
        except OSError:
            local = None
        if local is None or local != head_sha:
            notes.append(f"{path}: no review suggestions, the checked-out file is not the pull request head's "
                         "(a merge commit, or a newer push); the diff above is against the checked-out file.")
            continue
        hunks = difflines.commentable_lines(by_name[path].patch)
        codes = ", ".join(sorted({f"{f.code} {f.name}" for f in result.findings if f.fixable}))
        for suggestion in difflines.suggestions(result.diff):
            if difflines.in_diff(suggestion, hunks):
                comments.append(_review_comment(path, suggestion, codes or "fix"))
    left_out = max(0, len(comments) - MAX_REVIEW_COMMENTS)
    if left_out:
        notes.append(f"{left_out} more {'suggestion' if left_out == 1 else 'suggestions'} not posted as review "
                     f"comments, at most {MAX_REVIEW_COMMENTS} go in one review; the diffs above have every change.")
    return ReviewPlan(comments[:MAX_REVIEW_COMMENTS], notes, left_out)


def plan_review_comments(
    results: Sequence[FileResult], patches: Mapping[str, str | None], root: Path
) -> list[dict[str, Any]]:
    """Suggestion comments for the fix lines that ``patches`` (path -> patch) show, with no blob check."""
    comments = []
    for result in results:
        path = repo_relative(result.path, root) if result.diff else None
        if path is None or path not in patches:
            continue
        hunks = difflines.commentable_lines(patches[path])
        codes = ", ".join(sorted({f"{f.code} {f.name}" for f in result.findings if f.fixable}))
        comments += [_review_comment(path, s, codes or "fix")
                     for s in difflines.suggestions(result.diff) if difflines.in_diff(s, hunks)]
    return comments


def _ours(comment, login: str) -> bool:
    return comment.user is not None and comment.user.login == login and (comment.body or "").startswith(
        SUGGESTION_MARKER)


def _same(posted, planned: dict[str, Any]) -> bool:
    """A live posted comment is the planned one: same path, same lines, same fingerprint."""
    start = planned.get("start_line", planned["line"])
    return (posted.path == planned["path"] and posted.line == planned["line"]
            and (posted.start_line or posted.line) == start
            and (posted.body or "").split("\n", 1)[0] == planned["body"].split("\n", 1)[0])


def retire(client, comment) -> None:
    """Withdraw one of our suggestions: no suggestion block left to apply, and minimised as outdated."""
    comment.edit(f"{RETIRED_MARKER}\n_adapter-guard withdrew this suggestion: it no longer applies._")
    node_id = getattr(comment, "node_id", None)
    if node_id:
        from github import GithubException

        with contextlib.suppress(GithubException):  # hiding is cosmetic; the body is already inert
            client.requester.graphql_named_mutation(
                "minimizeComment", {"subjectId": node_id, "classifier": "OUTDATED"}, "clientMutationId")


@dataclass
class ReviewSync:
    posted: int = 0
    retired: int = 0
    note: str = ""


def sync_review(client, repo, pr, head_sha: str, plan: ReviewPlan, login: str) -> ReviewSync:
    """Make our live suggestions on the PR exactly ``plan``, in at most one live review.

    Nothing is posted or withdrawn when the PR head is no longer ``head_sha``
    (a push arrived while we ran): the next run sees the new head.
    """
    current = repo.get_pull(pr.number).head.sha
    if current != head_sha:
        return ReviewSync(note=f"the pull request moved to {current[:12]} while adapter-guard checked "
                               f"{head_sha[:12]}; review suggestions not updated")
    everything = list(pr.get_review_comments())
    replied = {c.in_reply_to_id for c in everything if c.in_reply_to_id}
    live = [c for c in everything if _ours(c, login) and c.line is not None]
    stale = [c for c in everything if _ours(c, login) and c.line is None]
    fresh = [c for c in plan.comments if not any(_same(p, c) for p in live)]
    keep = [p for p in live if any(_same(p, c) for c in plan.comments)]
    # Posting anything means one new review with every planned suggestion; the old ones go.
    retiring = [*stale, *live] if fresh else [*stale, *(p for p in live if p not in keep)]
    sync = ReviewSync()
    if fresh:
        pr.create_review(
            commit=repo.get_commit(head_sha),
            body=f"{SUGGESTION_MARKER} review -->\nadapter-guard: suggested fixes for lines in this diff "
            "(the sticky comment has the full report).",
            event="COMMENT",
            comments=plan.comments,
        )
        sync.posted = len(plan.comments)
    for comment in retiring:
        if comment.id not in replied:  # a conversation is the humans' to close
            retire(client, comment)
            sync.retired += 1
    return sync


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_for_artifact(body: str, number: int, out_dir: Path) -> Path:
    """Write the comment body and PR number where an upload-artifact step can pick them up."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(out_dir / BODY_FILE, body)
    _atomic_write(out_dir / NUMBER_FILE, f"{number}\n")
    return out_dir


def default_out_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("RUNNER_TEMP") or tempfile.gettempdir()) / "adapter-guard-comment"


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def run_comment(
    results: list[FileResult],
    *,
    env: Mapping[str, str] = os.environ,
    all_paths: bool = False,
    out_dir: Path | None = None,
    client=None,
    fix_mode: bool = False,
    notes: Sequence[str] = (),
) -> CommentOutcome:
    """Post or update the sticky PR comment and the review suggestions.

    ``notes`` are added to the comment (the Action's autofix names its commit there).

    Reads GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_EVENT_PATH (PR number, head
    SHA) and GITHUB_API_URL. Sets the step outputs ``comment-url`` and, when
    the token is read-only, ``comment-artifact-dir``, ``comment-body-file``
    and ``pr-number``. Prints one line to stderr and never raises for API
    trouble: the outcome says what happened. ``client`` is a PyGithub client
    to use instead of one built from the environment (tests).
    """
    try:
        ctx = read_pull_request(env)
    except ContextError as exc:
        outcome = CommentOutcome("failed", f"adapter-guard: cannot comment: {exc}")
        _say(redact(outcome.message, env.get("GITHUB_TOKEN")))
        return outcome
    if ctx is None:
        outcome = CommentOutcome("skipped", "adapter-guard: not a pull request event; no comment posted")
        _say(outcome.message)
        return outcome
    if not have_pygithub():
        outcome = CommentOutcome("failed", f"adapter-guard: cannot comment: {MISSING_PYGITHUB}")
        _say(outcome.message)
        return outcome

    scope = "under the checked paths" if all_paths else "touched by this pull request"
    outcome = _talk_to_github(results, ctx, env, scope, client, out_dir, fix_mode, notes)
    outcome.message = redact(outcome.message, ctx.token)
    outputs = {"comment-url": outcome.comment_url}
    if outcome.artifact_dir is not None:
        outputs.update(
            {
                "comment-artifact-dir": str(outcome.artifact_dir),
                "comment-body-file": str(outcome.artifact_dir / BODY_FILE),
                "pr-number": str(ctx.number),
            }
        )
    write_outputs(env, outputs)
    _say(outcome.message)
    return outcome


def comment_body(results: Sequence[FileResult], *, scope: str, head_sha: str | None, notes: Sequence[str] = (),
                 fix_mode: bool = False) -> str:
    lines = [f"> {markdown_escape(note)}" for note in notes]
    sha = f" · {head_sha[:7]}" if head_sha else ""
    footer = "\n".join([*lines, *([""] if lines else []), f"_adapter-guard {__version__}{sha}_"])
    return render_comment(results, scope=scope, footer=footer, fix_mode=fix_mode)


def _talk_to_github(results, ctx: PullRequestContext, env, scope: str, client, out_dir, fix_mode: bool = False,
                    notes: Sequence[str] = ()) -> CommentOutcome:
    from github import GithubException, RateLimitExceededException

    clean = not any(not f.fixed for r in results for f in r.findings) and not notes
    body = comment_body(results, scope=scope, head_sha=ctx.head_sha, notes=notes, fix_mode=fix_mode)
    with redacted_logs(ctx.token):
        try:
            client = client or make_client(ctx.api_url, ctx.token)
            repo = client.get_repo(ctx.repository)
            pr = repo.get_pull(ctx.number)
            head_sha = ctx.head_sha or pr.head.sha
            plan = plan_review(results, list(pr.get_files()), ctx.workspace)
            body = comment_body(results, scope=scope, head_sha=head_sha, notes=[*notes, *plan.notes],
                                fix_mode=fix_mode)
            login = comment_author(client, env)
            status, url = upsert_sticky_comment(pr, body, login, clean=clean)
        except GithubException as exc:
            if _status(exc) not in _READ_ONLY or isinstance(exc, RateLimitExceededException):
                return CommentOutcome("failed", f"adapter-guard: could not post the PR comment: {describe(exc)}",
                                      pr_number=ctx.number)
            try:
                where = save_for_artifact(body, ctx.number, out_dir or default_out_dir(env))
            except OSError as write_error:
                return CommentOutcome("failed", f"adapter-guard: the token cannot comment (HTTP {_status(exc)}) and "
                                      f"the comment could not be saved: {write_error}", pr_number=ctx.number)
            return CommentOutcome(
                "saved",
                "::notice title=adapter-guard::" + escape_data(
                    f"The token cannot comment on this pull request (HTTP {_status(exc)}, a fork?). "
                    f"The comment was saved to {where} for a workflow_run job to post."
                ),
                pr_number=ctx.number,
                artifact_dir=where,
            )
        except Exception as exc:  # network trouble and the like: report, never a traceback
            return CommentOutcome("failed", f"adapter-guard: could not post the PR comment: {describe(exc)}",
                                  pr_number=ctx.number)

        outcome = CommentOutcome(status, f"adapter-guard: PR comment {status}" + (f": {url}" if url else ""),
                                 comment_url=url, pr_number=ctx.number)
        try:
            sync = sync_review(client, repo, pr, head_sha, plan, login)
        except Exception as exc:
            # The suggestions are in the comment as diffs; a rejected review costs nothing else.
            outcome.message += f" (review suggestions not posted: {describe(exc)})"
            return outcome
        outcome.review_comments = sync.posted
        if sync.posted:
            outcome.message += f"; {sync.posted} suggestion(s) posted as a review"
        if sync.retired:
            outcome.message += f"; {sync.retired} outdated suggestion(s) withdrawn"
        if sync.note:
            outcome.message += f"; {sync.note}"
        return outcome


def changed_adapter_configs(
    env: Mapping[str, str] = os.environ, *, roots: Sequence[Path] | None = None, client=None
) -> list[Path] | None:
    """The adapter configs whose directory the pull request touches.

    Uses the PR's file list (``GET pulls/{n}/files``, every page): a config is
    chosen when any file in its directory was added, changed, renamed or
    removed. ``roots`` keeps only configs below those paths. Returns None when
    this is not a pull request run or the list cannot be read in full (the API
    lists at most 3,000 files); then lint every config under the given paths.
    """
    try:
        ctx = read_pull_request(env)
    except ContextError as exc:
        _say(f"adapter-guard: {exc}; checking every adapter under the given paths")
        return None
    if ctx is None:
        return None
    if not have_pygithub():
        _say(f"adapter-guard: {MISSING_PYGITHUB}; checking every adapter under the given paths")
        return None
    with redacted_logs(ctx.token):
        try:
            client = client or make_client(ctx.api_url, ctx.token)
            pr = client.get_repo(ctx.repository).get_pull(ctx.number)
            files = list(pr.get_files())
            listed_all = len(files) >= pr.changed_files
        except Exception as exc:
            _say(redact(f"adapter-guard: cannot list the PR's files ({describe(exc)}); "
                        "checking every adapter under the given paths", ctx.token))
            return None
    if not listed_all:
        # pulls/{n}/files stops at 3,000 files: an adapter past that would go unchecked.
        _say(f"adapter-guard: the API lists {len(files)} of the PR's {pr.changed_files} changed files; "
             "checking every adapter under the given paths")
        return None
    root = ctx.workspace.resolve()
    directories = set()
    for changed in files:
        for name in (changed.filename, changed.previous_filename):
            if name:
                directories.add(PurePosixPath(name).parent)
    wanted = [r.resolve() for r in roots] if roots else None
    configs = []
    for directory in sorted(directories):
        config = (root / directory / CONFIG_NAME).resolve()
        if not config.is_relative_to(root) or not config.is_file():
            continue
        if wanted is not None and not any(config == r or config.is_relative_to(r) for r in wanted):
            continue
        configs.append(_cwd_relative(config))
    return configs


def _cwd_relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd().resolve())
    except ValueError:
        return path
