"""The Action's ``autofix`` input: commit the safe fixes and push them to the PR's branch.

Only for a pull request whose head branch lives in this repository (never a
fork's), and only when the checkout is the PR head itself (a merge commit
would push the base's changes into the branch). The commit holds exactly the
files adapter-guard rewrote. The push names the expected parent, so a branch
that moved meanwhile is left alone. Whatever is not fixed still fails the run.

A push made with the workflow's ``GITHUB_TOKEN`` does not start a new
workflow run: the pushed commit gets no checks of its own unless the token is
a GitHub App's or a person's.

The token reaches git through ``GIT_CONFIG_*`` environment variables (an
``http.extraheader``, as actions/checkout sets it), never on a command line.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..findings import FileResult
from .env import read_event, redact, repo_relative

COMMIT_MESSAGE = "adapter-guard: apply safe fixes\n\nMade by the adapter-guard Action (autofix: true)."
BOT_NAME = "adapter-guard"
BOT_EMAIL = "adapter-guard@users.noreply.github.com"


@dataclass
class AutofixPlan:
    """Whether this run may push, and where: ``reason`` says why not when it may not."""

    branch: str = ""
    head_sha: str = ""
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return not self.reason


@dataclass
class AutofixOutcome:
    commit: str = ""
    message: str = ""
    ok: bool = True


def _git(root: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)
    if proc.returncode:
        raise RuntimeError((proc.stderr or proc.stdout).strip() or f"git {args[0]} failed")
    return proc.stdout.strip()


def plan(env: Mapping[str, str], root: Path) -> AutofixPlan:
    """May this run push fixes? Same-repository PR, checked out at its head, on a branch name we can push."""
    event = read_event(env) or {}
    pr = event.get("pull_request")
    if not isinstance(pr, dict):
        return AutofixPlan(reason="not a pull request run")
    head = pr.get("head") if isinstance(pr.get("head"), dict) else {}
    repo = head.get("repo") if isinstance(head.get("repo"), dict) else {}
    if repo.get("full_name") != env.get("GITHUB_REPOSITORY"):
        return AutofixPlan(reason="the pull request comes from a fork; nothing is pushed to a fork")
    branch, sha = head.get("ref"), head.get("sha")
    if not isinstance(branch, str) or not branch or not isinstance(sha, str):
        return AutofixPlan(reason="the event names no head branch")
    try:
        checked_out = _git(root, "rev-parse", "HEAD")
    except (OSError, RuntimeError) as exc:
        return AutofixPlan(reason=f"the checkout is not a git repository ({exc})")
    if checked_out != sha:
        return AutofixPlan(reason=f"the checkout ({checked_out[:12]}) is not the pull request head ({sha[:12]}); "
                                  "check out ${{ github.event.pull_request.head.sha }}")
    return AutofixPlan(branch=branch, head_sha=sha)


def _auth_env(env: Mapping[str, str], url: str) -> dict[str, str]:
    token = env.get("GITHUB_TOKEN", "")
    if not token or not url.startswith(("https://", "http://")):
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraheader",
            "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}"}


def commit_and_push(results: Sequence[FileResult], autofix: AutofixPlan, env: Mapping[str, str],
                    root: Path) -> AutofixOutcome:
    """Commit the files adapter-guard rewrote and push them to the PR branch."""
    written = [p for p in (repo_relative(r.path, root) for r in results if r.written) if p]
    if not written:
        return AutofixOutcome(message="autofix: nothing to fix")
    server = (env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    url = f"{server}/{env.get('GITHUB_REPOSITORY', '')}"
    identity = {"GIT_AUTHOR_NAME": BOT_NAME, "GIT_AUTHOR_EMAIL": BOT_EMAIL,
                "GIT_COMMITTER_NAME": BOT_NAME, "GIT_COMMITTER_EMAIL": BOT_EMAIL}
    token = env.get("GITHUB_TOKEN")
    try:
        _git(root, "add", "--", *written)
        _git(root, "commit", "--no-verify", "--quiet", "-m", COMMIT_MESSAGE, "--", *written, env=identity)
        commit = _git(root, "rev-parse", "HEAD")
        # The lease: push only if the branch is still at the head we fixed.
        _git(root, "push", "--quiet", f"--force-with-lease=refs/heads/{autofix.branch}:{autofix.head_sha}", url,
             f"{commit}:refs/heads/{autofix.branch}", env=_auth_env(env, url))
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return AutofixOutcome(message=redact(f"autofix: could not push the fixes: {exc}", token), ok=False)
    return AutofixOutcome(commit=commit, message=f"autofix: pushed {commit[:12]} to {autofix.branch} "
                                                 f"({len(written)} file{'s' if len(written) != 1 else ''})")
