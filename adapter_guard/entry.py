"""The ``adapter-guard`` console script: ``--version`` and a plain lint without importing click.

Importing click and building the command costs about 20 ms, a third of a
pre-commit run on one staged file. The two commands users run most, ``adapter-guard
PATHS...`` (every argument a path, no option) and ``adapter-guard --version``,
are answered here without it; every other command line goes to click
(``adapter_guard.cli``), which parses it, prints help and usage errors, and then
runs the same ``run_command``. Anything a plain lint could not answer exactly as
click would (a path click refuses, a settings error to report as a usage error,
shell completion) is handed to click before anything is run.
``tests/test_speed_paths.py`` holds the two entries to the same output and exit code.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from . import __version__

#: Options at the values click gives them when none is given (a test holds them to click's).
DEFAULT_OPTIONS = {
    "fix": False,
    "unsafe_fixes": None,
    "diff": False,
    "output_format": "text",
    "force_exclude": False,
    "exit_non_zero_on_fix": False,
    "fail_on": None,
    "base_model": None,
    "fetch_base_config": None,
    "smoke": False,
    "require_smoke": False,
    "gpt_oss": False,
    "lfs_headers": None,
    "lfs_credentials": None,
    "targets": (),
    "verbose": False,
}
#: click answers shell completion when this is set (``_{PROG}_COMPLETE``).
_COMPLETE_VAR = "_ADAPTER_GUARD_COMPLETE"
#: Surrogates other than surrogateescape's U+DC80..U+DCFF (undecodable file-name bytes).
_LONE_SURROGATE = "[\ud800-\udc7f\udd00-\udfff]"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code instead of exiting (like ``cli.main``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if _COMPLETE_VAR not in os.environ:
        if args in (["--version"], ["-V"]):
            # click.version_option's message, written as click.echo writes it.
            sys.stdout.write(f"adapter-guard, version {__version__}\n")
            sys.stdout.flush()
            return 0
        if all(_plain_path(arg) for arg in args):
            code = _plain_lint(args)
            if code is not None:
                return code
    from .cli import main as click_main

    return click_main(argv)


def _plain_path(arg: str) -> bool:
    """Whether click would take ``arg`` as a path as it is: no option, and not a
    path its ``click.Path()`` type refuses (one that exists but is not readable)."""
    if not arg or arg.startswith("-"):
        return False
    try:
        os.stat(arg)
    except OSError:
        return True  # click.Path(exists=False) takes a missing path as it is
    except Exception:  # noqa: BLE001 - a NUL byte, say: click's own path decides what happens
        return False
    return os.access(arg, os.R_OK)


def _plain_lint(args: list[str]) -> int | None:
    """Run ``adapter-guard PATHS...`` as click would; None when click must answer instead."""
    from .settings import SettingsError

    try:
        try:
            settings = settings_for([Path(arg) for arg in args], (), (), (), **DEFAULT_OPTIONS)
        except SettingsError:
            return None  # click reports it as a usage error, with its usage line
        return run_command(settings)
    except (EOFError, KeyboardInterrupt):
        # What click's main does: a blank line closes the terminal's ^C, then abort (exit 2).
        sys.stderr.write("\n")
        sys.stderr.flush()
        return 2
    except OSError as exc:
        import errno

        if exc.errno != errno.EPIPE:
            raise
        from click.utils import _PacifyFlushWrapper  # click's own answer to a closed pipe

        sys.stdout = _PacifyFlushWrapper(sys.stdout)
        sys.stderr = _PacifyFlushWrapper(sys.stderr)
        return 1


def split_codes(values: tuple[str, ...]) -> list[str] | None:
    """``--select AG2,AG301 --select AG4`` -> [AG2, AG301, AG4]; nothing given -> None."""
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


def settings_for(paths, select, ignore, exclude, **options):
    """The Settings for parsed command-line options (raises settings.SettingsError)."""
    from .settings import resolve

    settings = resolve(
        {
            "paths": list(paths) or [Path(".")],
            "select": split_codes(select),
            "ignore": split_codes(ignore),
            "exclude": split_codes(exclude),
            **options,
        }
    )
    if settings.require_smoke:
        settings.smoke = True
    return settings


def run_command(settings) -> int:
    """Lint (and fix) as the settings say, write the report; the exit code."""
    # Only --fix and --diff use a planned fix here (the Action's own entry point
    # plans them for its suggestions); a plain lint plans none.
    settings.plans_fixes = settings.fix or settings.diff
    try:
        return _run(settings)
    except Exception as exc:  # the one place an unexpected error becomes exit 2
        if settings.verbose:
            raise
        import click

        click.echo(
            f"adapter-guard: internal error: {type(exc).__name__}: {exc} (run with --verbose for the traceback)",
            err=True,
        )
        return 2


def lint(settings) -> list:
    """Run the engine: one FileResult per config, plus the built-in gpt-oss check when asked."""
    from .engine import run

    results = run(settings) if settings.paths else []
    if settings.gpt_oss and not any("gpt-oss" in r.checks for r in results):
        results.append(_builtin_gpt_oss(settings))
    return results


def _run(settings) -> int:
    from .engine import exit_code
    from .reporters import render
    from .reporters.text import printable

    results = lint(settings)

    # Human notices and diffs go to stdout only when stdout is the text report;
    # a machine format (json, sarif, github) keeps stdout to itself.
    text = settings.output_format == "text"
    for result in results:
        if result.written:
            _write(f"Fixing {printable(result.path)}\n", err=not text)
    if settings.output_format == "json":
        # JSON is a list of findings: a fix that could not be written, and the MLX
        # checks' report lines, have no place in it, so they go to stderr.
        for result in results:
            lines = [result.write_error] if result.write_error else []
            for line in lines + result.notes:
                _write(f"{printable(result.path)}: {printable(line)}\n", err=True)
    if settings.diff:
        for result in results:
            if result.diff:
                _write(result.diff, err=not text)
    _write(render(settings.output_format, results, fix_mode=settings.fix, verbose=settings.verbose), err=settings.diff and text)
    return exit_code(results, settings)


def _write(text: str, *, err: bool = False) -> None:
    """Write output exactly: no ANSI stripping (click.echo strips escapes off a
    non-terminal, which would change a file name in an annotation), and file
    names that are not UTF-8 go out as the bytes they are."""
    # A lone surrogate that stands for no file-name byte (JSON allows "\ud800")
    # cannot be encoded at all: write it as the escape it came from.
    if not text.isascii():  # compiling the pattern costs more than most reports take to write
        text = re.sub(_LONE_SURROGATE, lambda m: f"\\u{ord(m[0]):04x}", text)
    stream = sys.stderr if err else sys.stdout
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
        return
    stream.flush()
    buffer.write(text.encode("utf-8", "surrogateescape"))
    buffer.flush()


def _builtin_gpt_oss(settings):
    """No adapter has a gpt-oss base: run the regression on the built-in tiny config."""
    from .findings import FileResult
    from .mlx.gpt_oss import gpt_oss_findings

    findings, notes = gpt_oss_findings(None, None, base_model=settings.base_model)
    enabled = settings.enabled
    return FileResult("<built-in gpt-oss>", [f for f in findings if f.code in enabled], notes=notes)


if __name__ == "__main__":
    sys.exit(main())
