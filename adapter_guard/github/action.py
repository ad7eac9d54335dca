"""The GitHub Action's entry point: run the engine once, then report on GitHub once.

``action.yml`` hands its inputs to this module through ``env:`` (never
``${{ }}`` inside a script, so an input cannot inject shell), and runs

    python -m adapter_guard.github.action

which turns them into an ``adapter-guard`` command line, parses it with the
CLI's own parser, runs the engine, and then writes, once each: the
annotations (capped at what GitHub shows, with one notice for the rest), the
step summary, the ``findings`` / ``fixable`` outputs, and the sticky PR
comment with its review. The CLI knows nothing of any of this: it never
reads ``GITHUB_ACTIONS``, so a pre-commit hook batched inside a job writes
no summary.

Fixing in CI is explicit: ``--fix`` (and ``--diff``, and another output
format) in ``args`` is a usage error, since a fix made on the runner's checkout
is thrown away with the runner and the run would pass on a file nobody fixed.
The ``autofix`` input instead commits the safe fixes and pushes them to a
same-repository PR branch (see autofix.py); what is left unfixed still fails.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..findings import FileResult
from ..reporters import markdown
from ..reporters.github import annotation, command, is_file_path, report_path
from .env import workspace, write_outputs

#: Environment variables that action.yml sets from its inputs.
INPUTS = {
    "paths": "ADAPTER_GUARD_PATHS",
    "args": "ADAPTER_GUARD_ARGS",
    "smoke": "ADAPTER_GUARD_SMOKE",
    "gpt-oss": "ADAPTER_GUARD_GPT_OSS",
    "base-model": "ADAPTER_GUARD_BASE_MODEL",
    "comment": "ADAPTER_GUARD_COMMENT",
    "fail-on": "ADAPTER_GUARD_FAIL_ON",
    "autofix": "ADAPTER_GUARD_AUTOFIX",
}
FAIL_ON = ("error", "warning", "info", "never")
#: Accepted in ``args`` for the Action only: check every adapter under ``paths``, not only the PR's.
ALL_PATHS = "--all-paths"
#: GitHub shows at most this many annotations of each type (error, warning, notice) per step.
ANNOTATIONS_PER_TYPE = 10
_REFUSED = {
    "fix": "--fix is not supported in the Action: the fix would be made on the runner's checkout and "
    "thrown away, and the run would pass on files nobody fixed. Set the input `autofix: true` to commit "
    "and push the safe fixes to a same-repository PR branch, or run `adapter-guard --fix` locally",
    "diff": "--diff is not supported in the Action: the suggested changes are in the step summary, "
    "the PR comment and the review",
    "output_format": "--output-format is not supported in the Action: it writes annotations itself",
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
    """The ``adapter-guard`` arguments for the action's inputs (``--all-paths`` included, if given).

    ``paths`` and ``args`` are split like a shell would (quotes group), but
    never run through one.
    """
    try:
        paths = shlex.split(env.get(INPUTS["paths"], "") or ".")
        extra = shlex.split(env.get(INPUTS["args"], ""))
    except ValueError as exc:
        raise InputError(f"cannot split paths/args: {exc}") from None
    args = []
    fail_on = env.get(INPUTS["fail-on"], "").strip()
    if fail_on:
        if fail_on not in FAIL_ON:
            raise InputError(f"input 'fail-on' must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
        args += ["--fail-on", fail_on]
    if _boolean(env, "smoke", False):
        args.append("--smoke")
    if _boolean(env, "gpt-oss", False):
        args.append("--gpt-oss")
    base_model = env.get(INPUTS["base-model"], "").strip()
    if base_model:
        args += ["--base-model", base_model]
    return [*args, *extra, "--", *paths]


def parse(env: Mapping[str, str]):
    """(Settings, all_paths, comment) for the action's inputs; InputError for what the Action refuses.

    The settings never fix: ``autofix`` is decided in ``run``, where the PR is known.
    """
    import click

    from ..cli import parse_settings

    argv = build_cli_args(env)
    split = argv.index("--")
    all_paths = ALL_PATHS in argv[:split]
    argv = [a for i, a in enumerate(argv) if not (i < split and a == ALL_PATHS)]
    try:
        settings = parse_settings(argv)
    except click.UsageError as exc:
        raise InputError(exc.format_message()) from None
    except click.exceptions.Exit:  # --help, --version, --list-rules, --explain: print and stop
        raise InputError("args holds an option that prints something and exits; it does not lint") from None
    for name, reason in _REFUSED.items():
        if getattr(settings, name) not in (False, "text"):
            raise InputError(reason)
    return settings, all_paths, _boolean(env, "comment", True)


# -- annotations ------------------------------------------------------------------------------


def annotations(results: Sequence[FileResult], *, extra: Sequence[str] = (),
                per_type: int = ANNOTATIONS_PER_TYPE) -> str:
    """Workflow commands for the findings that remain, at most ``per_type`` of each type.

    GitHub drops the rest silently, so when there are more, one notice (which
    takes a notice slot) says how many and where the full list is, and the
    left-out findings are printed as plain log lines.
    """
    commands = [annotation(f) for r in results for f in r.findings if not f.fixed]
    commands += [command("error", f"could not write the fix: {r.write_error}", title="adapter-guard",
                         file=report_path(r.path), line=1) for r in results if r.write_error]
    commands += list(extra)
    shown: dict[str, int] = {}
    kept, dropped = [], []
    for line in commands:
        kind = line[2:].split(" ", 1)[0].split("::", 1)[0]
        shown[kind] = shown.get(kind, 0) + 1
        (kept if shown[kind] <= per_type else dropped).append(line)
    if dropped:
        notices = [line for line in kept if line.startswith("::notice")]
        if len(notices) >= per_type:  # make room for the one that explains
            kept.remove(notices[-1])
            dropped.append(notices[-1])
        kept.append(command(
            "notice",
            f"{len(dropped)} more annotation(s) not shown: GitHub shows {per_type} of each type per step. "
            "The step summary and the log below list every finding.",
            title="adapter-guard",
        ))
        kept += ["adapter-guard: not annotated: " + _plain(line) for line in dropped]
    return "".join(line + "\n" for line in kept)


def _plain(workflow_command: str) -> str:
    """A workflow command as a log line that the runner does not read as a command."""
    return workflow_command.lstrip(":").replace("::", " ", 1)


def suggestion_annotations(results: Sequence[FileResult]) -> list[str]:
    """Notices with each suggested change, for a fork PR (its token cannot post a review)."""
    from . import diff as difflines

    out = []
    for result in results:
        if not result.diff or result.written or not is_file_path(result.path):
            continue
        for suggestion in difflines.suggestions(result.diff):
            out.append(command(
                "notice",
                "Suggested change (adapter-guard --fix):\n" + "\n".join(suggestion.lines),
                title=f"adapter-guard suggestion, lines {suggestion.start}-{suggestion.end}",
                file=report_path(result.path),
                line=suggestion.start,
            ))
    return out


# -- summary and outputs -----------------------------------------------------------------------


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


# -- the step ------------------------------------------------------------------------------------


def run(env: Mapping[str, str] = os.environ, *, client=None) -> int:
    """The whole step; returns its exit code (0 clean, 1 findings, 2 usage or internal error)."""
    try:
        settings, all_paths, comment = parse(env)
    except InputError as exc:
        print(command("error", str(exc), title="adapter-guard"), flush=True)
        return 2
    from ..entry import lint
    from ..engine import exit_code

    notes: list[str] = []
    push = None
    if _boolean(env, "autofix", False):
        from . import autofix

        push = autofix.plan(env, workspace(env))
        if push.allowed:
            settings.fix = True
        else:
            print(command("notice", f"autofix: nothing pushed: {push.reason}", title="adapter-guard"), flush=True)
            push = None
    print(f"adapter-guard: checking {' '.join(str(p) for p in settings.paths)}", file=sys.stderr, flush=True)
    try:
        if comment and not all_paths:
            from .comment import changed_adapter_configs

            # Only the adapters the PR touches; None means "not a PR run": check PATHS.
            changed = changed_adapter_configs(env, roots=settings.paths, client=client)
            if changed is not None:
                settings.paths = changed
        results = lint(settings)
    except Exception as exc:  # the one place an unexpected error becomes exit 2
        print(command("error", f"internal error: {type(exc).__name__}: {exc}", title="adapter-guard"), flush=True)
        return 2

    pushed_ok = True
    if push is not None:
        from . import autofix

        pushed = autofix.commit_and_push(results, push, env, workspace(env))
        print(command("notice" if pushed.ok else "error", pushed.message, title="adapter-guard"), flush=True)
        pushed_ok = pushed.ok
        if pushed.commit:
            notes.append(f"adapter-guard pushed {pushed.commit} with the safe fixes to this branch. A push made "
                         "with the workflow's GITHUB_TOKEN starts no new workflow run.")
        elif not pushed.ok:
            notes.append(pushed.message)
    report_to_actions(results, env=env, fix_mode=settings.fix)
    extra: list[str] = []
    if comment:
        from .comment import run_comment

        outcome = run_comment(results, env=env, all_paths=all_paths, client=client, fix_mode=settings.fix,
                              notes=notes)
        if outcome.status == "saved":  # a fork: no review, so the suggestions become annotations
            extra = suggestion_annotations(results)
    sys.stdout.write(annotations(results, extra=extra))
    sys.stdout.flush()
    code = exit_code(results, settings)
    return code if pushed_ok else max(code, 1)


def main(env: Mapping[str, str] = os.environ) -> int:
    return run(env)


if __name__ == "__main__":
    sys.exit(main())
