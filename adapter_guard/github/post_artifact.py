"""Post the comment a fork PR's run saved, from a trusted ``workflow_run`` job.

The artifact comes from code the PR author controls, so it is data, never
instructions: only two files are read, both size-capped; the PR number must
be plain digits and must name an *open* PR whose head repository and head
commit are the ones the triggering run tested; the body must carry our
marker. Outside code fences, every mention, issue reference, link and HTML
tag in it is neutralised, in any encoding GitHub would decode (``&#64;``,
``&commat;``, ``%40``, fullwidth forms); inside fences nothing is changed, so
a suggested JSON value stays byte for byte. The length is checked after that.
Nothing from the artifact reaches a shell or a path.

No artifact at all is not an error: a same-repository PR's run posts its own
comment and uploads none.

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

from ..reporters.markdown import COMMENT_LIMIT, COMMENT_MARKER, JOINER, neutralise
from ..registry import DOCS_URL
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
#: A fence opener as CommonMark reads one: up to 3 spaces, 3+ backticks (info without a backtick) or tildes.
_FENCE_OPEN = re.compile(r" {0,3}(?:(?P<ticks>`{3,})[^`]*|(?P<tildes>~{3,}).*)")
#: CommonMark's line endings.
_LINE_ENDING = re.compile(r"(\r\n|\r|\n)")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]*\]:")
#: A markdown link target or an image's: ``](...)``.
_LINK = re.compile(r"(?<!\\)\]\((?P<target>[^)\s]*)")


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


def _closes(line: str, char: str, length: int) -> bool:
    stripped = line.rstrip(" \t")
    indent = len(stripped) - len(stripped.lstrip(" "))
    run = stripped.lstrip(" ")
    return indent <= 3 and len(run) >= length and set(run) == {char}


def _neutralise_line(line: str) -> str:
    """One line outside a fence: links only to the rule docs, no HTML, no mentions, references or autolinks."""
    # A link reference definition ("[x]: url") makes "[x]" a link anywhere in the body.
    line = _REFERENCE_DEFINITION.sub(lambda m: m[0][:-1] + JOINER + ":", line)
    out, last = [], 0
    for match in _LINK.finditer(line):
        out.append(neutralise(line[last:match.start()].replace("<", "&lt;")))
        if match["target"].startswith(DOCS_URL + "#"):
            out.append(match[0])  # a rule's documentation link, as the comment renders it
        else:
            out.append("]" + JOINER + "(" + neutralise(match["target"].replace("<", "&lt;")))
        last = match.end()
    out.append(neutralise(line[last:].replace("<", "&lt;")))
    return "".join(out)


def sanitise(body: str) -> str:
    """``body`` with everything that could ping, link or inject HTML neutralised, outside code fences.

    Fences are read as CommonMark reads them, with its line endings ("\n",
    "\r\n" and a lone "\r"), so a fence cannot look closed to GitHub and open
    to us; lines inside are left byte for byte. The marker on the first line
    stays (it is how the comment is found).
    """
    first, _, rest = body.partition("\n")
    pieces = _LINE_ENDING.split(rest)  # line, ending, line, ending, ..., line
    fence: tuple[str, int] | None = None
    for i in range(0, len(pieces), 2):
        line = pieces[i]
        if fence is not None:
            if _closes(line, *fence):
                fence = None
            continue
        opener = _FENCE_OPEN.fullmatch(line)
        if opener:
            run = opener["ticks"] or opener["tildes"]
            fence = (run[0], len(run))
            continue
        pieces[i] = _neutralise_line(line)
    return first + "\n" + "".join(pieces)


def read_artifact(directory: Path) -> tuple[int, str] | None:
    """(PR number, comment body) from a saved artifact, validated and neutralised; None when there is none."""
    if not any(os.path.lexists(directory / name) for name in (NUMBER_FILE, BODY_FILE)):
        return None
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
    first_line = body.partition("\n")[0]
    if "\x00" in body or first_line != COMMENT_MARKER:
        raise ArtifactError("the comment body is not an adapter-guard comment")
    body = sanitise(body)
    if len(body) > COMMENT_LIMIT:
        raise ArtifactError(f"the comment body is longer than {COMMENT_LIMIT} characters once neutralised")
    return int(text), body


def _triggering_run(env: Mapping[str, str]) -> tuple[str, str]:
    """(head SHA, head repository) of the pull_request run that uploaded the artifact."""
    event = read_event(env) or {}
    run = event.get("workflow_run")
    if not isinstance(run, dict):
        raise ContextError("not a workflow_run event")
    sha = run.get("head_sha")
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        raise ContextError("the workflow_run event has no head_sha")
    head_repository = run.get("head_repository")
    name = head_repository.get("full_name") if isinstance(head_repository, dict) else None
    if not isinstance(name, str) or not _REPOSITORY.fullmatch(name):
        raise ContextError("the workflow_run event has no head_repository")
    return sha, name


def _refusal(pr, number: int, head_sha: str, head_repository: str) -> str | None:
    """Why the artifact may not comment on ``pr``, or None when it may."""
    if pr.state != "open":
        return f"PR #{number} is {pr.state}"
    head_repo = pr.head.repo.full_name if pr.head.repo is not None else None
    if head_repo != head_repository:
        return f"PR #{number} comes from {head_repo}, but the run that saved the comment tested {head_repository}"
    if pr.head.sha != head_sha:
        return f"PR #{number} is at {pr.head.sha[:12]}, but the run that saved the comment tested {head_sha[:12]}"
    return None


def post_artifact(directory: Path, *, env: Mapping[str, str] = os.environ, client=None) -> CommentOutcome:
    """Validate the artifact in ``directory`` and create or update the sticky comment."""
    token = env.get("GITHUB_TOKEN", "")
    try:
        head_sha, head_repository = _triggering_run(env)
        artifact = read_artifact(directory)
        if artifact is None:
            return CommentOutcome("skipped", "adapter-guard: no comment artifact (the pull request's own run "
                                  "could comment); nothing to post")
        number, body = artifact
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
            refusal = _refusal(pr, number, head_sha, head_repository)
            if refusal:
                return CommentOutcome("failed", f"adapter-guard: refusing the artifact: {refusal}", pr_number=number)
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
