"""The GitHub Action's side of a run: its command line, step summary and outputs.

``action.yml`` hands its inputs to this module through ``env:`` (never
``${{ }}`` inside a script, so an input cannot inject shell), and runs

    python -m adapter_guard.github.action

which turns them into an ``adapter-guard`` command line and runs the CLI in
process. The CLI calls ``report_to_actions`` after linting, which writes the
step summary and the ``findings`` / ``fixable`` outputs.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..findings import FileResult
from ..reporters import markdown
from ..reporters.github import command
from .env import write_outputs

#: Environment variables that action.yml sets from its inputs.
INPUTS = {
    "paths": "ADAPTER_GUARD_PATHS",
    "args": "ADAPTER_GUARD_ARGS",
    "smoke": "ADAPTER_GUARD_SMOKE",
    "gpt-oss": "ADAPTER_GUARD_GPT_OSS",
    "base-model": "ADAPTER_GUARD_BASE_MODEL",
    "comment": "ADAPTER_GUARD_COMMENT",
    "fail-on": "ADAPTER_GUARD_FAIL_ON",
}


class InputError(Exception):
    """An action input has a value the action cannot use."""


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(INPUTS[name], "").strip().lower()
    if not value:
        return default
    if value in ("true", "false"):
        return value == "true"
    raise InputError(f"input {name!r} must be true or false, not {value!r}")


def build_cli_args(env: Mapping[str, str]) -> list[str]:
    """The ``adapter-guard`` arguments for the action's inputs.

    ``paths`` and ``args`` are split like a shell would (quotes group), but
    never run through one.
    """
    try:
        paths = shlex.split(env.get(INPUTS["paths"], "") or ".")
        extra = shlex.split(env.get(INPUTS["args"], ""))
    except ValueError as exc:
        raise InputError(f"cannot split paths/args: {exc}") from None
    args = ["--output-format", "github"]
    fail_on = env.get(INPUTS["fail-on"], "").strip()
    if fail_on:
        if fail_on not in ("error", "warning", "never"):
            raise InputError(f"input 'fail-on' must be error, warning or never, not {fail_on!r}")
        args += ["--fail-on", fail_on]
    if _boolean(env, "smoke", False):
        args.append("--smoke")
    if _boolean(env, "gpt-oss", False):
        args.append("--gpt-oss")
    base_model = env.get(INPUTS["base-model"], "").strip()
    if base_model:
        args += ["--base-model", base_model]
    if _boolean(env, "comment", True):
        args.append("--github-comment")
    return [*args, *extra, "--", *paths]


def write_step_summary(results: list[FileResult], env: Mapping[str, str] = os.environ, *,
                       fix_mode: bool = False) -> bool:
    """Append the Markdown report to ``$GITHUB_STEP_SUMMARY``, within its 1 MiB limit.

    The limit is per step, so what the step already wrote counts against it.
    Returns False when the variable is not set.
    """
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    try:
        used = Path(target).stat().st_size
    except OSError:
        used = 0
    limit = markdown.SUMMARY_LIMIT - used
    if limit < 1024:
        return False
    text = markdown.render_report(results, fix_mode=fix_mode, limit=limit)
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(text)
    return True


def counts(results: Sequence[FileResult]) -> dict[str, str]:
    """The ``findings`` and ``fixable`` outputs: findings that remain, and how many a fix covers."""
    remaining = [f for r in results for f in r.findings if not f.fixed]
    return {"findings": str(len(remaining)), "fixable": str(sum(1 for f in remaining if f.fixable))}


def report_to_actions(results: list[FileResult], *, env: Mapping[str, str] = os.environ,
                      fix_mode: bool = False) -> None:
    """Write the step summary and the count outputs (each only when the runner asks for it)."""
    write_step_summary(results, env, fix_mode=fix_mode)
    write_outputs(env, counts(results))


def main(env: Mapping[str, str] = os.environ) -> int:
    """Run adapter-guard with the action's inputs; returns the CLI's exit code."""
    try:
        args = build_cli_args(env)
    except InputError as exc:
        print(command("error", str(exc), title="adapter-guard"), flush=True)
        return 2
    from ..cli import main as cli_main

    print(f"adapter-guard {shlex.join(args)}", file=sys.stderr, flush=True)
    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
