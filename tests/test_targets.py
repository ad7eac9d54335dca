"""The target framework: --target parsing, version ranges, findings named after the target, the matrix.

The runtimes' own rules are tested against the runtimes in tests/test_target_*.py. Here a
small profile made for the test exercises the machinery on the bundled real examples.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapter_guard import targets
from adapter_guard.cli import main, parse_settings
from adapter_guard.engine import run
from adapter_guard.registry import ERROR, RULES, WARNING, Rule
from adapter_guard.reporters.markdown import render_comment
from adapter_guard.settings import SettingsError, resolve
from adapter_guard.targets import PROFILES, TargetError, Verdict, parse_target
from adapter_guard.targets.model import Profile, TargetRule, in_range, parse_version

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "adapters"


# -- parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "label"),
    [
        ("mlx-lm", "mlx-lm"),
        ("MLX-LM@0.18", "mlx-lm@0.18"),
        ("peft@v0.13.2", "peft@0.13.2"),
        ("llama.cpp@b4500", "llama.cpp@b4500"),
        (" mlx-vlm@0.5 ", "mlx-vlm@0.5"),
    ],
)
def test_a_target_spec_names_a_profile_and_a_version(spec, label):
    assert parse_target(spec).label == label


def test_without_a_version_the_newest_checked_release_is_assumed():
    target = parse_target("peft")
    assert target.version is None
    assert target.effective_version == parse_version(PROFILES["peft"].latest)
    assert target.describe == f"PEFT {PROFILES['peft'].latest}"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("tensorrt", "unknown target 'tensorrt'"),
        ("peft@latest", "is not a release version"),
        ("peft@0.13:max_lora_rank=8", "has no option 'max_lora_rank'"),
        ("mlx-lm@", "is not a release version"),
    ],
)
def test_a_bad_target_spec_says_what_is_wrong(spec, words):
    with pytest.raises(TargetError, match=words):
        parse_target(spec)


@pytest.mark.parametrize(
    ("version", "spec", "inside"),
    [
        ("0.18.2", "<0.19", True),
        ("0.19", "<0.19", False),
        ("0.13", "<0.13.1", True),  # 0.13 is 0.13.0
        ("0.13.2", ">=0.13,<0.14", True),
        ("0.14.0", ">=0.13,<0.14", False),
        ("0.5.0", "==0.5", True),
        ("1.0", "*", True),
        ("b4500", ">=b4000", True),
    ],
)
def test_version_ranges(version, spec, inside):
    assert in_range(parse_version(version), spec) is inside


# -- settings ------------------------------------------------------------------


def test_an_unknown_target_is_a_usage_error(capsys):
    assert main([str(EXAMPLES / "peft-clean"), "--target", "tensorrt"]) == 2
    assert "unknown target 'tensorrt'" in capsys.readouterr().err


def test_targets_come_from_pyproject_and_the_command_line_wins(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.adapter-guard]\ntargets = ["peft@0.13", "mlx-lm"]\n')
    assert [t.label for t in resolve({}, cwd=tmp_path).targets] == ["peft@0.13", "mlx-lm"]
    assert [t.label for t in resolve({"targets": ("mlx-vlm@0.5",)}, cwd=tmp_path).targets] == ["mlx-vlm@0.5"]


@pytest.mark.parametrize(("value", "words"), [('"peft"', "must be a list of strings"), ('["peft@x"]', "targets in")])
def test_a_bad_targets_setting_is_a_settings_error(tmp_path, value, words):
    (tmp_path / "pyproject.toml").write_text(f"[tool.adapter-guard]\ntargets = {value}\n")
    with pytest.raises(SettingsError, match=words):
        resolve({}, cwd=tmp_path)


def test_a_plain_lint_never_imports_the_target_profiles():
    code = (
        "import sys; from adapter_guard.entry import main; main([sys.argv[1]]); "
        "print('adapter_guard.targets' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(EXAMPLES)], capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "False"


# -- the machinery, on a profile made for the test ------------------------------


def _rank_above(ctx):
    limit = ctx.options["max_r"]
    if ctx.config.get("r", 0) > limit:
        yield Verdict(f"r={ctx.config['r']} exceeds max_r {limit}; use a lower rank", ("r",))


def _not_peft(ctx):
    yield Verdict(f"a {ctx.format} adapter cannot be loaded here; convert it to PEFT")


@pytest.fixture
def toy(monkeypatch):
    """A profile for the test: PEFT adapters only, and r must not exceed max_r before release 2."""
    monkeypatch.setitem(RULES, "AG998", Rule("AG998", "toy-wrong-format", WARNING, "toy wrong format", "For the test."))
    monkeypatch.setitem(RULES, "AG999", Rule("AG999", "toy-rank", ERROR, "toy rank limit", "For the test."))
    source = dict(source="toy.py", url="https://example.invalid/toy.py", fails="toy")
    profile = Profile(
        name="toy", display="Toy", package="toy", latest="2.0", loads=frozenset({"peft-lora"}),
        wrong_format=TargetRule("AG998", "*", check=_not_peft, **source),
        rules=(TargetRule("AG999", "<2", check=_rank_above, **source),), options={"max_r": 4},
    )
    monkeypatch.setitem(PROFILES, "toy", profile)
    return profile


@pytest.fixture
def repo(tmp_path):
    for name in ("peft-clean", "clean-llama"):
        shutil.copytree(EXAMPLES / name, tmp_path / name)
    return tmp_path


def _results(repo, *specs):
    argv = [str(repo)] + [a for spec in specs for a in ("--target", spec)]
    return {Path(r.path).parent.name: r for r in run(parse_settings(argv))}


def test_a_target_finding_names_the_target_and_its_version(toy, repo):
    peft = _results(repo, "toy@1")["peft-clean"]
    r = json.loads((repo / "peft-clean" / "adapter_config.json").read_text())["r"]
    [finding] = [f for f in peft.findings if f.code == "AG999"]
    assert finding.message == f"Toy 1: r={r} exceeds max_r 4; use a lower rank"
    assert finding.to_json()["target"] == "toy@1"
    assert finding.line > 1  # points at "r"
    assert peft.targets == {"toy@1": "fails"}


def test_an_option_changes_the_verdict(toy, repo):
    assert _results(repo, "toy@1:max_r=4096")["peft-clean"].targets == {"toy@1:max_r=4096": "ok"}


def test_a_rule_outside_its_version_range_is_silent(toy, repo):
    result = _results(repo, "toy@2")["peft-clean"]
    assert not [f for f in result.findings if f.code.startswith("AG99")]
    assert result.targets == {"toy@2": "ok"}
    assert _results(repo, "toy")["peft-clean"].targets == {"toy": "ok"}  # latest is 2.0


def test_a_format_the_runtime_cannot_load_gets_only_the_wrong_format_rule(toy, repo):
    mlx = _results(repo, "toy@1")["clean-llama"]
    assert [(f.code, f.message) for f in mlx.findings] == [
        ("AG998", "Toy 1: a mlx-lm adapter cannot be loaded here; convert it to PEFT")
    ]
    assert mlx.targets == {"toy@1": "warns"}


def test_target_findings_obey_select_and_ignore(toy, repo):
    argv = [str(repo), "--target", "toy@1", "--ignore", "AG99"]
    results = run(parse_settings(argv))
    assert not [f for r in results for f in r.findings if f.code.startswith("AG99")]
    assert {r.targets["toy@1"] for r in results} == {"ok"}


def test_the_pr_comment_shows_the_matrix(toy, repo):
    body = render_comment(list(_results(repo, "toy@1", "toy@2").values()))
    assert "#### Will it load there?" in body
    lines = body.splitlines()
    header = next(line for line in lines if line.startswith("| Adapter | Format |"))
    assert "toy@" in header and header.count("toy") == 2
    peft_row = next(line for line in lines if "peft-clean" in line and "✅" in line)
    assert peft_row.endswith("| ❌ fails | ✅ ok |")
    mlx_row = next(line for line in lines if "clean-llama" in line and "⚠️" in line)
    assert mlx_row.endswith("| ⚠️ warns | ⚠️ warns |")


def test_the_text_report_has_one_line_per_target(toy, repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert main([".", "--target", "toy@1:max_r=4096"]) == 1  # the wrong-format warning fails the run
    out = capsys.readouterr().out
    assert "target toy@1:max_r=4096: 1 ok, 1 warn\n" in out


def test_no_matrix_without_targets(repo):
    body = render_comment(list(_results(repo).values()))
    assert "Will it load there?" not in body


def test_weights_without_a_config_are_not_judged_by_any_target(toy, tmp_path):
    (tmp_path / "lone").mkdir()
    shutil.copy(EXAMPLES / "peft-clean" / "adapter_model.safetensors", tmp_path / "lone")
    [result] = run(parse_settings([str(tmp_path), "--target", "toy@1"]))
    assert [f.code for f in result.findings] == ["AG007"]
    assert result.targets == {"toy@1": "n/a"}


def test_the_pre_commit_path_takes_targets_from_pyproject(toy, repo, capsys, monkeypatch):
    """pre-commit runs `adapter-guard FILE...` (the click-free entry): pyproject's targets still apply."""
    from adapter_guard.entry import main as entry_main

    (repo / "pyproject.toml").write_text('[tool.adapter-guard]\ntargets = ["toy@1"]\n')
    monkeypatch.chdir(repo)
    assert entry_main(["peft-clean/adapter_config.json"]) == 1
    out = capsys.readouterr().out
    assert "AG999 Toy 1: r=" in out and "target toy@1: 1 fail" in out
