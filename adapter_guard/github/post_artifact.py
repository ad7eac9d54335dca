"""Post the comment a fork PR's run saved, from a trusted ``workflow_run`` job.

The artifact comes from code the PR author controls, so it is data, never
instructions: only two files are read, both size-capped; the PR number must
be plain digits and must name an open PR whose head is the commit the
triggering run tested; the body must carry our marker, and @mentions in it
are neutralised. Nothing from the artifact reaches a shell or a path.

    python -m adapter_guard.github.post_artifact DIR
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..reporters.markdown import COMMENT_LIMIT, COMMENT_MARKER
from .comment import (
    BODY_FILE,
    MISSING_PYGITHUB,
    NUMBER_FILE,
    CommentOutcome,
    comment_author,
    describe,
    have_pygithub,
    make_client,
    redacted_logs,
    upsert_sticky_comment,
)
from .env import DEFAULT_API_URL, ContextError, read_event, redact

_NUMBER = re.compile(r"[1-9][0-9]{0,9}\n?")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_MENTION = re.compile(r"@(?=[A-Za-z0-9_])")


class ArtifactError(Exception):
    """The artifact is not what adapter-guard writes; nothing is posted."""


def _read_capped(path: Path, limit: int) -> bytes:
    try:
        info = os.lstat(path)
    except OSError:
        raise ArtifactError(f"{path.name} is missing from the artifact") from None
    if not stat.S_ISREG(info.st_mode):
        raise ArtifactError(f"{path.name} is not a regular file")
    if info.st_size > limit:
        raise ArtifactError(f"{path.name} is larger than {limit} bytes")
    with open(path, "rb") as fh:
        return fh.read(limit + 1)


def read_artifact(directory: Path) -> tuple[int, str]:
    """(PR number, comment body) from a saved artifact, validated."""
    raw_number = _read_capped(directory / NUMBER_FILE, 16)
    text = raw_number.decode("ascii", errors="replace")
    if not _NUMBER.fullmatch(text):
        raise ArtifactError("the PR number in the artifact is not a plain positive integer")
    # A body of COMMENT_LIMIT characters is at most 4 bytes each in UTF-8.
    raw_body = _read_capped(directory / BODY_FILE, COMMENT_LIMIT * 4)
    try:
        body = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactError("the comment body is not UTF-8") from None
    if len(body) > COMMENT_LIMIT:
        raise ArtifactError(f"the comment body is longer than {COMMENT_LIMIT} characters")
    if "\x00" in body or not body.startswith(COMMENT_MARKER):
        raise ArtifactError("the comment body is not an adapter-guard comment")
    return int(text), _MENTION.sub("@\u2060", body)


def _triggering_run(env: Mapping[str, str]) -> str:
    """The head SHA of the pull_request run that uploaded the artifact."""
    event = read_event(env) or {}
    run = event.get("workflow_run")
    if not isinstance(run, dict):
        raise ContextError("not a workflow_run event")
    sha = run.get("head_sha")
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        raise ContextError("the workflow_run event has no head_sha")
    return sha


def post_artifact(directory: Path, *, env: Mapping[str, str] = os.environ, client=None) -> CommentOutcome:
    """Validate the artifact in ``directory`` and create or update the sticky comment."""
    token = env.get("GITHUB_TOKEN", "")
    try:
        head_sha = _triggering_run(env)
        number, body = read_artifact(directory)
        repository = env.get("GITHUB_REPOSITORY", "")
        if not _REPOSITORY.fullmatch(repository):
            raise ContextError(f"GITHUB_REPOSITORY is {repository!r}, expected owner/name")
        if not token:
            raise ContextError("GITHUB_TOKEN is not set")
    except (ArtifactError, ContextError) as exc:
        return CommentOutcome("failed", f"adapter-guard: refusing the artifact: {exc}")
    if not have_pygithub():
        return CommentOutcome("failed", f"adapter-guard: {MISSING_PYGITHUB}")
    with redacted_logs(token):
        try:
            client = client or make_client((env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"), token)
            pr = client.get_repo(repository).get_pull(number)
            if pr.head.sha != head_sha:
                return CommentOutcome(
                    "failed",
                    f"adapter-guard: refusing the artifact: PR #{number} is at {pr.head.sha[:12]}, "
                    f"but the run that saved the comment tested {head_sha[:12]}",
                    pr_number=number,
                )
            status, url = upsert_sticky_comment(pr, body, comment_author(client, env), clean=False)
        except Exception as exc:  # API or network trouble: a message, never a traceback
            message = redact(f"adapter-guard: could not post the comment: {describe(exc)}", token)
            return CommentOutcome("failed", message, pr_number=number)
    return CommentOutcome(status, f"adapter-guard: PR comment {status}: {url}", comment_url=url, pr_number=number)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapter_guard.github.post_artifact", description=__doc__)
    parser.add_argument("directory", type=Path, help="where the comment artifact was downloaded")
    args = parser.parse_args(argv)
    outcome = post_artifact(args.directory, env=env)
    print(redact(outcome.message, env.get("GITHUB_TOKEN")), file=sys.stderr)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
