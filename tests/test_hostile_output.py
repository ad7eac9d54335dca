"""Hostile file names cannot forge workflow commands, break the one-line text report, or the JSON/SARIF reports.

Each name below is a directory holding an adapter with one finding (AG205).
GitHub's runner reads commands from stdout *and* stderr, splitting at CR,
LF and CRLF, and takes a line whose start (after spaces) is ``::`` or the
older ``##[`` as a command; ``hostile.COMMAND`` parses one the way it does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from hostile import COMMAND, COMPLETE, command_properties, run_cli, unescape, workflow_lines, write_adapter

NEEDS_FIX = COMPLETE.replace('        "dropout": 0.0,\n', "")
TERMINAL_ESCAPE = "esc\x1b[2Jclear"
HOSTILE_NAMES = [
    TERMINAL_ESCAPE,
    "new\nline",
    "cr\rreturn",
    "x\n::error file=forged.py,line=1::forged",
    "::warning file=a.py::at the start",
    "%0A::notice::percent-encoded newline",
    "100%25 and %",
    "`backticks` $(id)",
    "<img src=x onerror=alert(1)>",
    "comma,colon:equals=",
    "vt\x0bff\x0cfs\x1cnel\x85ls\u2028ps\u2029",
    "tab\tname",
    "::add-mask::secret",
    " ::notice::leading space",
    "##[error]legacy command",
]


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = [write_adapter(Path(name), NEEDS_FIX) for name in HOSTILE_NAMES]
    return tmp_path, {str(p) for p in paths}


def commands(output: str) -> list[str]:
    return [line for line in workflow_lines(output) if line.lstrip().startswith(("::", "##["))]


def test_github_annotations_are_one_command_per_finding_naming_the_real_file(repo):
    _, paths = repo
    run = run_cli(".", "--output-format", "github")
    assert run.code == 1
    found = commands(run.out) + commands(run.err)
    assert len(found) == len(HOSTILE_NAMES)
    files = set()
    for line in found:
        parsed = COMMAND(line)
        assert parsed and parsed["kind"] == "error", line
        properties = command_properties(parsed["props"])
        assert set(properties) == {"file", "line", "title"}
        assert properties["title"] == "adapter-guard (AG205)"
        assert unescape(parsed["data"]).startswith("lora_parameters.dropout is missing")
        files.add(properties["file"])
    assert files == paths


def test_a_terminal_escape_in_a_file_name_reaches_the_annotation_intact(repo):
    run = run_cli(".", "--output-format", "github")
    files = {command_properties(COMMAND(line)["props"])["file"] for line in commands(run.out)}
    assert TERMINAL_ESCAPE + "/adapter_config.json" in files


def test_text_output_is_one_line_per_finding(repo):
    _, paths = repo
    run = run_cli(".")
    lines = run.out.splitlines()  # the strictest split: also VT, FF, FS, NEL, U+2028, U+2029
    findings = [line for line in lines if ": AG205 [*] " in line]
    assert len(findings) == len(HOSTILE_NAMES)
    assert lines[len(findings):] == [f"Found {len(paths)} findings in {len(paths)} files.", f"[*] {len(paths)} fixable with `--fix`."]
    assert not any(ch in run.out for ch in "\r\x0b\x0c\x1b\x1c\x85\u2028\u2029")
    assert commands(run.out) == []
    assert "./::add-mask::secret/adapter_config.json:4: AG205" in run.out
    assert "x\\n::error file=forged.py,line=1::forged/adapter_config.json:4: AG205" in run.out


def test_json_output_is_valid_and_paths_round_trip_exactly(repo):
    _, paths = repo
    run = run_cli(".", "--output-format", "json")
    assert {f["path"] for f in json.loads(run.out)} == paths


def test_sarif_output_is_valid_and_uris_name_the_files(repo):
    _, paths = repo
    run = run_cli(".", "--output-format", "sarif")
    results = json.loads(run.out)["runs"][0]["results"]
    uris = {unquote(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) for r in results}
    assert uris == paths


def test_hostile_json_values_cannot_forge_commands_either(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = NEEDS_FIX.replace('"rank": 8', '"rank": "8\\n::error file=forged.py::value\\r::warning::cr"')
    write_adapter(tmp_path / "adapter", config)
    run = run_cli(".", "--output-format", "github")
    assert len(commands(run.out)) == 2  # AG004 for the rank, AG205 for the dropout
    assert all(command_properties(COMMAND(c)["props"])["file"] == "adapter/adapter_config.json" for c in commands(run.out))


def test_diff_headers_quote_hostile_paths_as_git_does(repo):
    run = run_cli(".", "--diff")
    assert run.code == 1
    assert commands(run.out) + commands(run.err) == []
    assert '--- "a/x\\n::error file=forged.py,line=1::forged/adapter_config.json"\n' in run.out


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_apply_of_the_diff_equals_the_fix_for_hostile_paths_and_values(repo, tmp_path):
    root, paths = repo
    value = '"caf\u00e9 \u2028 \x85"'  # line separators JSON allows raw inside a string
    for path in paths:
        Path(path).write_text(NEEDS_FIX.replace('"caf\\u00e9/tiny"', value), encoding="utf-8")
    fixed = tmp_path.parent / (tmp_path.name + "-fixed")
    shutil.copytree(root, fixed, symlinks=True)
    diff = run_cli(".", "--diff").out
    (root / "fix.patch").write_text(diff, encoding="utf-8")
    subprocess.run(["git", "apply", "--unsafe-paths", "fix.patch"], cwd=root, check=True, capture_output=True)
    os.chdir(fixed)
    assert run_cli(".", "--fix").code == 0
    for path in paths:
        assert (root / path).read_bytes() == (fixed / path).read_bytes()


@pytest.mark.parametrize("output_format", ["text", "json", "github", "sarif"])
def test_a_lone_surrogate_escape_in_the_config_cannot_crash_a_format(tmp_path, monkeypatch, output_format):
    # Valid JSON: json.loads gives a str holding U+D800, which no UTF-8 stream can encode.
    monkeypatch.chdir(tmp_path)
    write_adapter(tmp_path / "adapter", NEEDS_FIX.replace('"rank": 8', '"rank": 8, "\\ud800": NaN'))
    run = run_cli(".", "--output-format", output_format)
    assert run.code == 1 and "internal error" not in run.err


@pytest.fixture
def undecodable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    directory = os.fsdecode(b"bad\xffname")  # a file-name byte that is not UTF-8: a lone surrogate in Python
    return write_adapter(Path(directory), NEEDS_FIX)


def test_an_undecodable_file_name_is_escaped_in_text_and_round_trips_in_json(undecodable):
    assert "bad\\xffname/adapter_config.json:" in run_cli(".").out
    [finding] = run_cli(".", "--output-format", "json").findings()
    assert os.fsencode(finding["path"]) == os.fsencode(undecodable)


def test_an_undecodable_file_name_does_not_crash_sarif(undecodable):
    run = run_cli(".", "--output-format", "sarif")
    assert run.code == 1 and "internal error" not in run.err


# -- notices, diffs and hook arguments --------------------------------------------------------------


def test_the_fixing_notice_cannot_forge_a_command(repo):
    run = run_cli(".", "--fix", "--output-format", "github")
    assert run.code == 0  # everything was fixed: nothing may be annotated
    assert commands(run.out) + commands(run.err) == []


def test_the_fixing_notice_is_one_line_per_file(repo):
    run = run_cli(".", "--fix")
    assert len([line for line in run.out.splitlines() if line.startswith("Fixing ")]) == len(run.out.splitlines()) - 1


def test_diff_with_json_output_keeps_stdout_json(repo):
    run = run_cli(".", "--diff", "--output-format", "json")
    json.loads(run.out)


def test_a_staged_path_cannot_become_an_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hooks = yaml.safe_load((Path(__file__).resolve().parent.parent / ".pre-commit-hooks.yaml").read_text())
    entry = next(h["entry"] for h in hooks if h["id"] == "adapter-guard").split()[1:]
    good = write_adapter(tmp_path / "good", NEEDS_FIX)
    (tmp_path / "--exclude=*").mkdir()
    hostile = write_adapter(tmp_path / "--exclude=*", NEEDS_FIX)
    staged = sorted([os.path.relpath(hostile, tmp_path), os.path.relpath(good, tmp_path)])  # "-" sorts first
    run = run_cli(*entry, *staged)
    assert run.code == 1 and "good/adapter_config.json" in run.out
