"""The one sticky PR comment, and review suggestions for lines in the PR diff.

The comment carries a hidden marker. It is found again by marker *and*
author (all pages of comments are read), and edited in place on every push;
other users' comments are never touched, however alike they look. A clean run
edits an existing comment to say so, and posts nothing when there was none.

Fixable changes go into the comment as a ```diff block per file. Those whose
lines the PR diff shows are also posted as one review with ```suggestion
blocks: a single comment on a line outside the diff makes GitHub reject the
whole review (422), so such changes stay in the sticky comment only.

With a read-only token (a pull request from a fork) the API answers 403 or
404. The run does not fail: the body and PR number are written to files and
step outputs, for a ``workflow_run`` job to post (see post_artifact.py).

The token is never printed: messages are redacted and PyGithub's debug log is
filtered while we talk to the API.
"""

from __future__ import annotations

import contextlib
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
from . import diff as difflines
from .env import ContextError, PullRequestContext, read_pull_request, redact, repo_relative, write_outputs

SUGGESTION_MARKER = "<!-- adapter-guard:suggestion -->"
#: Who writes comments with the Actions GITHUB_TOKEN; that token cannot read /user.
DEFAULT_BOT_LOGIN = "github-actions[bot]"
#: Set this to the bot's login when posting with a GitHub App token.
AUTHOR_ENV = "ADAPTER_GUARD_COMMENT_AUTHOR"
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
    """The login our comments appear under, to find the sticky comment again."""
    if env.get(AUTHOR_ENV):
        return env[AUTHOR_ENV]
    if env.get("GITHUB_TOKEN", "").startswith("ghs_"):
        # An installation token (the Actions GITHUB_TOKEN): it cannot read /user.
        return DEFAULT_BOT_LOGIN
    from github import GithubException

    try:
        return client.get_user().login
    except GithubException as exc:
        if _status(exc) in _READ_ONLY:
            return DEFAULT_BOT_LOGIN
        raise


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


def _review_comment(path: str, suggestion: difflines.Suggestion, codes: str) -> dict[str, Any]:
    body = f"{SUGGESTION_MARKER}\n**adapter-guard** suggests ({codes}):\n\n" + fence(
        "\n".join(suggestion.lines), "suggestion"
    )
    comment: dict[str, Any] = {"path": path, "body": body, "line": suggestion.end, "side": "RIGHT"}
    if suggestion.start != suggestion.end:
        comment.update(start_line=suggestion.start, start_side="RIGHT")
    return comment


def plan_review_comments(
    results: Sequence[FileResult], patches: Mapping[str, str | None], root: Path
) -> list[dict[str, Any]]:
    """Suggestion comments for the fix lines that the PR diff shows.

    ``patches`` maps each PR file (repository-relative) to its diff ``patch``.
    Lines outside the diff are dropped here: they stay in the sticky comment.
    """
    comments = []
    for result in results:
        if not result.diff:
            continue
        path = repo_relative(result.path, root)
        if path is None or path not in patches:
            continue
        hunks = difflines.commentable_lines(patches[path])
        codes = ", ".join(sorted({f"{f.code} {f.name}" for f in result.findings if f.fixable}))
        for suggestion in difflines.suggestions(result.diff):
            if difflines.in_diff(suggestion, hunks):
                comments.append(_review_comment(path, suggestion, codes or "fix"))
    return comments


def _post_review(repo, pr, ctx: PullRequestContext, results, login: str) -> int:
    """Post the suggestions that are not on the PR yet; returns how many."""
    patches = {f.filename: f.patch for f in pr.get_files()}
    planned = plan_review_comments(results, patches, ctx.workspace)
    if not planned:
        return 0
    # Suggestions already on the PR (same file, same text) are not posted again.
    posted = {
        (c.path, c.body)
        for c in pr.get_review_comments()
        if c.user is not None and c.user.login == login and SUGGESTION_MARKER in (c.body or "")
    }
    fresh = [c for c in planned if (c["path"], c["body"]) not in posted]
    if not fresh:
        return 0
    commit = repo.get_commit(ctx.head_sha or pr.head.sha)
    pr.create_review(
        commit=commit,
        body=f"{SUGGESTION_MARKER}\nadapter-guard: suggested fixes for lines in this diff "
        "(the sticky comment has the full report).",
        event="COMMENT",
        comments=fresh,
    )
    return len(fresh)


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
) -> CommentOutcome:
    """Post or update the sticky PR comment and the review suggestions.

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
    sha = f" · {ctx.head_sha[:7]}" if ctx.head_sha else ""
    footer = f"<sub>adapter-guard {__version__}{sha}</sub>"
    body = render_comment(results, scope=scope, footer=footer)
    clean = not any(not f.fixed for r in results for f in r.findings)
    outcome = _talk_to_github(results, ctx, env, body, clean, client, out_dir)
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


def _talk_to_github(results, ctx: PullRequestContext, env, body: str, clean: bool, client, out_dir) -> CommentOutcome:
    from github import GithubException, RateLimitExceededException

    with redacted_logs(ctx.token):
        try:
            client = client or make_client(ctx.api_url, ctx.token)
            repo = client.get_repo(ctx.repository)
            pr = repo.get_pull(ctx.number)
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
        if clean:
            return outcome
        try:
            outcome.review_comments = _post_review(repo, pr, ctx, results, login)
        except Exception as exc:
            # The suggestions are in the comment as diffs; a rejected review costs nothing else.
            outcome.message += f" (review suggestions not posted: {describe(exc)})"
        if outcome.review_comments:
            outcome.message += f"; {outcome.review_comments} suggestion(s) posted as a review"
        return outcome


def changed_adapter_configs(
    env: Mapping[str, str] = os.environ, *, roots: Sequence[Path] | None = None, client=None
) -> list[Path] | None:
    """The adapter configs whose directory the pull request touches.

    Uses the PR's file list (``GET pulls/{n}/files``, every page): a config is
    chosen when any file in its directory was added, changed, renamed or
    removed. ``roots`` keeps only configs below those paths. Returns None when
    this is not a pull request run or the list cannot be read; then lint
    every config under the given paths instead.
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
            files = list(client.get_repo(ctx.repository).get_pull(ctx.number).get_files())
        except Exception as exc:
            _say(redact(f"adapter-guard: cannot list the PR's files ({describe(exc)}); "
                        "checking every adapter under the given paths", ctx.token))
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
