"""The ``adapter-guard`` command in click: options, help and usage errors, then the engine.

Exit codes: 0 nothing remains (including "all fixed"); 1 findings remain,
``--diff`` had diffs, or ``--exit-non-zero-on-fix`` fixed something; 2 usage
or internal error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .entry import run_command, settings_for
from .registry import RULES

FORMATS = ("text", "json", "github", "sarif")


def _list_rules(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    name_width = max(len(rule.name) for rule in RULES.values())
    fix_width = max(len(rule.fix.label) for rule in RULES.values())
    for rule in RULES.values():
        click.echo(f"{rule.code}  {rule.name:<{name_width}} {rule.severity:<8} {rule.fix.label:<{fix_width}} {rule.summary}")
    ctx.exit(0)


def explain(code: str) -> str:
    rule = RULES[code.upper()]
    return (
        f"{rule.code} {rule.name} ({rule.severity})\n\n{rule.summary}.\n\n{rule.explanation}\n\n{rule.fix.sentence}\n"
        f"Docs: {rule.url}\n"
    )


def _explain(ctx: click.Context, _param, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    if value.upper() not in RULES:
        raise click.BadParameter(f"unknown rule {value!r} (see --list-rules)", param_hint="--explain")
    click.echo(explain(value), nl=False)
    ctx.exit(0)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--fix", is_flag=True, help="Apply safe fixes in place.")
@click.option("--unsafe-fixes", is_flag=True, default=None, help="Also apply fixes that replace an explicit value.")
@click.option("--diff", is_flag=True, help="Print the diffs --fix would write; write nothing (exit 1 if any).")
@click.option("--output-format", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--select", multiple=True, metavar="CODES", help="Rule codes or prefixes to enable (comma-separated).")
@click.option("--ignore", multiple=True, metavar="CODES", help="Rule codes or prefixes to disable (comma-separated).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths matching these globs when searching.")
@click.option("--force-exclude", is_flag=True, help="Apply excludes to paths given explicitly too.")
@click.option("--exit-non-zero-on-fix", is_flag=True, help="Exit 1 when a file was fixed, even if nothing remains.")
@click.option("--fail-on", type=click.Choice(("error", "warning", "info", "never")), default=None,
              help="Lowest severity that makes the run fail.  [default: warning]")
@click.option("--base-model", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Local base model directory (config.json, weights optional).")
@click.option("--fetch-base-config", is_flag=True, default=None,
              help="Fetch only the base model's config.json from the Hugging Face Hub when no local copy is found (needs [hub]).")
@click.option("--target", "targets", multiple=True, metavar="NAME[@VERSION][:KEY=VALUE]",
              help="Also check that the adapter loads on this runtime: mlx-lm, mlx-vlm, peft, vllm, llama.cpp "
                   "(repeatable; e.g. vllm:max_lora_rank=64, mlx-lm@0.18).")
@click.option("--smoke", is_flag=True, help="Reload each adapter with stock mlx-lm and check its behaviour (needs [mlx]).")
@click.option("--require-smoke", is_flag=True, help="Fail when the smoke test had to be skipped.")
@click.option("--gpt-oss", "gpt_oss", is_flag=True, help="Run the gpt-oss sliding-window attention regression (needs [mlx]).")
@click.option("--lfs-headers/--no-lfs-headers", "lfs_headers", default=None,
              help="Read the headers of Git LFS weights from the LFS server (default: on in GitHub Actions only).")
@click.option("--lfs-credentials", is_flag=True, default=None,
              help="Let git's credential helper answer an LFS server that asks for credentials.")
@click.option("--list-rules", is_flag=True, expose_value=False, is_eager=True, callback=_list_rules,
              help="List every rule and exit.")
@click.option("--explain", metavar="CODE", expose_value=False, is_eager=True, callback=_explain,
              help="Explain one rule and exit.")
@click.option("-v", "--verbose", is_flag=True, help="Show each adapter's detected format, and tracebacks for internal errors.")
@click.version_option(__version__, "-V", "--version", prog_name="adapter-guard")
def cli(paths, select, ignore, exclude, **options) -> None:
    """Lint and fix LoRA adapters (PEFT, mlx-lm, mlx-vlm) against the shapes in their safetensors headers."""
    sys.exit(run_command(settings_from_options(paths, select, ignore, exclude, **options)))


def settings_from_options(paths, select, ignore, exclude, **options):
    """The Settings for parsed command-line options (raises click.UsageError)."""
    from .settings import SettingsError

    try:
        return settings_for(paths, select, ignore, exclude, **options)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def parse_settings(argv: list[str]):
    """The Settings an ``adapter-guard`` command line asks for, without running it.

    The GitHub Action's entry point uses this to run the engine itself, so the
    CLI knows nothing of the Action. Raises click.UsageError (and click.exceptions.Exit
    for --help, --version and the like).
    """
    with cli.make_context("adapter-guard", list(argv)) as ctx:
        return settings_from_options(**ctx.params)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code instead of exiting (handy in tests and hooks)."""
    try:
        cli.main(args=argv, prog_name="adapter-guard", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
