"""What a GitHub Actions runner tells a step: the event, the repository, the
API address, and the files a step writes its outputs and summary to.

Everything takes the environment as a mapping, so tests pass a dict and the
CLI passes ``os.environ``.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_API_URL = "https://api.github.com"

_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class ContextError(Exception):
    """The environment does not describe a pull request we can talk to."""


@dataclass(frozen=True)
class PullRequestContext:
    repository: str
    number: int
    head_sha: str | None
    api_url: str
    workspace: Path
    token: str = field(repr=False)


def workspace(env: Mapping[str, str]) -> Path:
    return Path(env.get("GITHUB_WORKSPACE") or os.getcwd())


def read_event(env: Mapping[str, str]) -> dict | None:
    """The event payload, or None when there is none (not on a runner)."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            event = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ContextError(f"cannot read the event payload {path}: {exc}") from None
    return event if isinstance(event, dict) else None


def pull_request_number(event: dict | None) -> tuple[int, str | None] | None:
    """(number, head SHA) of the pull request an event is about, or None."""
    if not event:
        return None
    pr = event.get("pull_request")
    if not isinstance(pr, dict):
        return None
    number = pr.get("number", event.get("number"))
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        return None
    head = pr.get("head")
    sha = head.get("sha") if isinstance(head, dict) else None
    return number, sha if isinstance(sha, str) and _SHA.fullmatch(sha) else None


def read_pull_request(env: Mapping[str, str]) -> PullRequestContext | None:
    """The pull request this run is about, or None when the event is not a PR.

    Raises ContextError for a PR run that lacks what the API calls need
    (token, repository), with a message that says what to set.
    """
    found = pull_request_number(read_event(env))
    if found is None:
        return None
    number, head_sha = found
    repository = env.get("GITHUB_REPOSITORY", "")
    if not _REPOSITORY.fullmatch(repository):
        raise ContextError(f"GITHUB_REPOSITORY is {repository!r}, expected owner/name")
    token = env.get("GITHUB_TOKEN", "")
    if not token:
        raise ContextError("GITHUB_TOKEN is not set; pass the action's github-token input or set it in env:")
    api_url = (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    return PullRequestContext(repository, number, head_sha, api_url, workspace(env), token)


def repo_relative(path: str, root: Path) -> str | None:
    """``path`` as a POSIX path relative to the repository root, or None outside it."""
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = Path(os.getcwd()) / candidate
    try:
        return Path(os.path.normpath(candidate)).relative_to(os.path.normpath(root.absolute())).as_posix()
    except ValueError:
        return None


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced (the token must never be printed)."""
    return text.replace(secret, "***") if secret else text


def write_outputs(env: Mapping[str, str], outputs: Mapping[str, str]) -> bool:
    """Append step outputs to ``$GITHUB_OUTPUT``; False when not on a runner.

    Uses the ``name<<delimiter`` form with a random delimiter, so no value can
    end its block early and set another output.
    """
    target = env.get("GITHUB_OUTPUT")
    if not target:
        return False
    lines = []
    for name, value in outputs.items():
        delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
        lines += [f"{name}<<{delimiter}", str(value), delimiter]
    with open(target, "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return True
