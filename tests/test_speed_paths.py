"""The fast paths change nothing but the time: the same findings, diffs and exit codes.

A plain lint takes four shortcuts (issue 12): headers parsed with msgspec
from ``engine.FAST_HEADER_THRESHOLD`` files on, the files split over forked
processes from ``engine.PARALLEL_THRESHOLD`` on, no fix planning unless a
fix is written or a diff shown, and a console script (``adapter_guard.entry``)
that answers ``--version`` and ``adapter-guard PATHS...`` without click. Each is
held here to the plain path on one tree holding every corpus the suite has: the
real PEFT, mlx-vlm and legacy writers' adapters, the examples, and generated
hostile adapters.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from adapter_guard import cli, engine, entry, readers, safetensors_fast, safetensors_header
from adapter_guard.engine import exit_code
from adapter_guard.reporters import render
from adapter_guard.settings import Settings
from hostile import RandomDraw, gen_example

FORMATS = ("text", "json", "sarif", "github")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "adapters"


@pytest.fixture(scope="module")
def tree(tmp_path_factory, peft_corpus, vlm_corpus, legacy_corpus) -> Path:
    root = tmp_path_factory.mktemp("speed_tree")
    for corpus, samples in (("peft", peft_corpus), ("vlm", vlm_corpus), ("legacy", legacy_corpus)):
        for name, sample in samples.items():
            shutil.copytree(sample.adapter_dir, root / corpus / name)
    shutil.copytree(EXAMPLES, root / "examples")
    for i in range(80):
        gen_example(RandomDraw(random.Random(f"speed:{i}"))).write(root / "hostile" / f"adapter-{i:03d}")
    return root


def report(tree: Path, monkeypatch, *, forked: bool, fast: bool, plans_fixes: bool, **options) -> dict:
    """Every output format of one in-process run over ``tree``, its diffs and exit code."""
    monkeypatch.chdir(tree)
    monkeypatch.setattr(readers, "_read_header", safetensors_fast.read_header if fast else safetensors_header.read_header)
    monkeypatch.setattr(readers, "_read_shapes", safetensors_fast.read_shapes if fast else readers._shapes_of)
    monkeypatch.setattr(engine, "use_fast_header_parser", lambda: None)  # the choice above stands
    monkeypatch.setattr(engine, "_workers", lambda count, settings: 2 if forked else 1)
    settings = Settings(paths=[Path(".")], root=tree, plans_fixes=plans_fixes, **options)
    results = engine.run(settings)
    return {
        "count": len(results),
        "formats": {name: render(name, results, fix_mode=settings.fix) for name in FORMATS},
        # What the PR comment and --diff show of each result.
        "diffs": [r.diff for r in results] if plans_fixes or settings.fix else None,
        "exit": exit_code(results, settings),
    }


def test_the_tree_has_findings_fixes_and_broken_files(tree, monkeypatch):
    plain = report(tree, monkeypatch, forked=False, fast=False, plans_fixes=True)
    assert plain["count"] > 100 and plain["exit"] == 1
    assert '"code": "AG102"' in plain["formats"]["json"]  # unreadable weights
    assert any(plain["diffs"])  # fixable findings


@pytest.mark.parametrize("options", [{}, {"unsafe_fixes": True}, {"select": ["AG1"]}], ids=["default", "unsafe", "select"])
def test_the_fast_paths_report_what_the_plain_path_reports(tree, monkeypatch, options):
    plain = report(tree, monkeypatch, forked=False, fast=False, plans_fixes=True, **options)
    fast = report(tree, monkeypatch, forked=True, fast=True, plans_fixes=False, **options)
    assert fast["formats"] == plain["formats"]
    assert fast["exit"] == plain["exit"]


def test_diffs_are_the_same_through_the_forked_fast_path(tree, monkeypatch):
    plain = report(tree, monkeypatch, forked=False, fast=False, plans_fixes=True, diff=True)
    fast = report(tree, monkeypatch, forked=True, fast=True, plans_fixes=True, diff=True)
    assert fast == plain


def test_fix_writes_the_same_files_through_the_forked_fast_path(tree, tmp_path, monkeypatch):
    copies = {}
    for name, (forked, fast) in {"plain": (False, False), "fast": (True, True)}.items():
        copies[name] = tmp_path / name
        shutil.copytree(tree, copies[name], symlinks=True)
        copies[name] = report(copies[name], monkeypatch, forked=forked, fast=fast, plans_fixes=False, fix=True,
                              unsafe_fixes=True) | {"files": _contents(copies[name])}
    assert copies["fast"]["files"] == copies["plain"]["files"]
    assert copies["fast"]["formats"] == copies["plain"]["formats"] and copies["fast"]["exit"] == copies["plain"]["exit"]


def _contents(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("adapter_config.json"))
        if p.is_file() and not p.is_symlink()
    }


# -- the fork split ----------------------------------------------------------------------------


def test_an_error_in_a_forked_worker_is_raised_in_the_parent(tmp_path, monkeypatch):
    paths = [tmp_path / f"a{i}" / "adapter_config.json" for i in range(6)]

    def process(path, settings):
        if path.parent.name == "a3":  # in the second worker's share (every other path from index 1)
            raise ValueError("boom in a3")
        return engine.FileResult(str(path))

    monkeypatch.setattr(engine, "process", process)
    with pytest.raises(ValueError, match="boom in a3"):
        engine._run_forked(paths, Settings(), 2)


def test_forked_results_come_back_in_discovery_order(tmp_path, monkeypatch):
    paths = [tmp_path / f"a{i}" / "adapter_config.json" for i in range(11)]
    monkeypatch.setattr(engine, "process", lambda path, settings: engine.FileResult(f"{path}:{os.getpid()}"))

    results = engine._run_forked(paths, Settings(), 3)

    assert [r.path.rsplit(":", 1)[0] for r in results] == [str(p) for p in paths]
    assert len({r.path.rsplit(":", 1)[1] for r in results}) == 3  # three processes did the work


def test_one_usable_core_means_no_fork(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert engine._workers(10_000, Settings()) == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(32)))
    assert engine._workers(10_000, Settings()) == 8
    assert engine._workers(engine.PARALLEL_THRESHOLD - 1, Settings()) == 1


# -- the console script without click ----------------------------------------------------------


def outputs(main, argv: list[str], capfd) -> tuple[int, str, str]:
    """Exit code, stdout and stderr (at the file descriptors) of one in-process run."""
    capfd.readouterr()
    code = main(argv)
    out, err = capfd.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"], ["-V"], [], ["."], ["peft", "examples"], ["hostile/adapter-000/adapter_config.json"],
        ["no/such/path"], ["examples", "--output-format", "json"], ["--bogus"], ["--", "examples"], ["-"], [""],
        ["--version", "examples"], ["-h"],
    ],
    ids=lambda argv: " ".join(argv) or "no arguments",
)
def test_the_console_script_answers_as_click_does(tree, monkeypatch, capfd, argv):
    monkeypatch.chdir(tree)
    assert outputs(entry.main, argv, capfd) == outputs(cli.main, argv, capfd)


def test_a_settings_error_is_clicks_usage_error(tmp_path, monkeypatch, capfd):
    (tmp_path / "pyproject.toml").write_text('[tool.adapter-guard]\nno-such-key = 1\n')
    monkeypatch.chdir(tmp_path)
    code, out, err = outputs(entry.main, ["."], capfd)
    assert (code, out, err) == outputs(cli.main, ["."], capfd)
    assert code == 2 and err.startswith("Usage: adapter-guard") and "no-such-key" in err


def test_shell_completion_is_left_to_click(tree, monkeypatch, capfd):
    monkeypatch.chdir(tree)
    monkeypatch.setenv("_ADAPTER_GUARD_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "adapter-guard --fi")
    monkeypatch.setenv("COMP_CWORD", "1")
    assert outputs(entry.main, ["--version"], capfd)[1:] == outputs(cli.main, ["--version"], capfd)[1:]
    assert "--fix" in outputs(entry.main, ["--version"], capfd)[1]


def test_a_plain_lint_uses_clicks_defaults():
    with cli.cli.make_context("adapter-guard", ["x"]) as ctx:
        params = dict(ctx.params)
    assert {key: params.pop(key) for key in ("paths", "select", "ignore", "exclude")} == {
        "paths": (Path("x"),), "select": (), "ignore": (), "exclude": ()
    }
    assert params == entry.DEFAULT_OPTIONS


@pytest.mark.parametrize("argv", [["--version"], ["-V"], ["examples"]])
def test_version_and_a_plain_lint_do_not_import_click(tree, argv):
    child = "import sys; from adapter_guard.entry import main; main(sys.argv[1:]); print('click' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", child, *argv], cwd=tree, capture_output=True, text=True)
    assert proc.stdout.splitlines()[-1] == "False"


def test_a_plain_lint_of_an_mlx_adapter_imports_neither_lfs_nor_the_peft_rules(tree):
    """What only a Git LFS pointer or a PEFT adapter needs is imported when one is met."""
    lazy = ("adapter_guard.lfs", "adapter_guard.formats.peft", "adapter_guard.atomic")
    child = f"import sys; from adapter_guard.entry import main; main(sys.argv[1:]); print([m for m in {lazy!r} if m in sys.modules])"
    mlx = subprocess.run([sys.executable, "-c", child, "examples/clean-llama"], cwd=tree, capture_output=True, text=True)
    assert mlx.stdout.splitlines()[-1] == "[]"
    peft = subprocess.run([sys.executable, "-c", child, "examples/peft-clean"], cwd=tree, capture_output=True, text=True)
    assert peft.stdout.splitlines()[-1] == "['adapter_guard.formats.peft']"


@pytest.mark.parametrize("adapter", ["examples/clean-llama", "examples/peft-clean", "vlm"])
def test_a_plain_lint_imports_neither_dataclasses_nor_typing(tree, adapter):
    """Importing ``dataclasses`` (with ``inspect``, ``ast``, ``dis``) and building dataclasses took
    more of a one-adapter run's start-up than the lint: the plain path uses ``record`` classes,
    and imports ``typing`` only for type checkers."""
    path = adapter if adapter != "vlm" else str(min((tree / "vlm").iterdir()).relative_to(tree))
    heavy = ("dataclasses", "inspect", "ast", "dis", "typing")
    child = f"import sys; from adapter_guard.entry import main; main(sys.argv[1:]); print([m for m in {heavy!r} if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", child, path], cwd=tree, capture_output=True, text=True)
    assert proc.stderr == "" and len(proc.stdout.splitlines()) >= 2  # it linted, and reported
    assert proc.stdout.splitlines()[-1] == "[]"


def test_records_compare_and_hash_as_the_dataclasses_did():
    from adapter_guard.findings import Finding, Fix
    from adapter_guard.infer import AdapterShape
    from adapter_guard.record import replace
    from adapter_guard.registry import SAFE

    fix = Fix(SAFE, ((("r",), 8),), "set r")
    assert fix == Fix(SAFE, ((("r",), 8),), "set r") and hash(fix) == hash(Fix(SAFE, ((("r",), 8),), "set r"))
    assert fix != Fix(SAFE, ((("r",), 16),), "set r")
    assert repr(fix) == "Fix(applicability=<Applicability.SAFE: 'safe'>, sets=((('r',), 8),), description='set r')"
    finding = Finding("AG201", "a/adapter_config.json", "m", fix=fix)
    assert finding == Finding("AG201", "a/adapter_config.json", "m", fix=fix) and finding.extra == {}
    with pytest.raises(TypeError):  # mutable, like a dataclass that is not frozen
        hash(finding)
    assert Finding("AG201", "p", "m").extra is not Finding("AG201", "p", "m").extra  # a fresh default each
    shape = AdapterShape(ranks={8: ["a"]}, has_m=True)
    changed = replace(shape, ranks={})
    assert (changed.ranks, changed.has_m, shape.ranks) == ({}, True, {8: ["a"]})
    assert Settings(fix=True) == Settings(fix=True, root=Path.cwd()) != Settings(root=Path.cwd())


def test_an_option_still_goes_through_click(tree):
    child = "import sys; from adapter_guard.entry import main; main(sys.argv[1:]); print('click' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", child, "--fail-on", "never", "examples"], cwd=tree,
                          capture_output=True, text=True)
    assert proc.stdout.splitlines()[-1] == "True"


def test_the_installed_command_is_the_click_free_entry():
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["adapter-guard"] == "adapter_guard.entry:main"
