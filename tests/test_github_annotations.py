"""--output-format github: workflow commands that become annotations."""

from __future__ import annotations

import os

from adapter_guard.findings import FileResult
from adapter_guard.reporters.github import escape_data, escape_property, render

from github_results import finding


def test_a_finding_becomes_an_error_command_with_file_line_and_title():
    out = render([FileResult("adapters/a/adapter_config.json", [finding()])], fix_mode=False)
    assert out == (
        "::error file=adapters/a/adapter_config.json,line=3,title=adapter-guard (AG205)::"
        "lora_parameters.dropout is missing (fixable with --fix) [missing-dropout]\n"
    )


def test_severity_picks_the_command():
    results = [FileResult("c.json", [finding("AG304", "c.json", "fine_tune_type is missing"),
                                     finding("AG501", "c.json", "smoke skipped", fix=None)])]
    kinds = [line.split(" ", 1)[0] for line in render(results, fix_mode=False).splitlines()]
    assert kinds == ["::warning", "::notice"]


def test_a_finding_without_a_line_points_at_line_one():
    out = render([FileResult("c.json", [finding(path="c.json", line=None)])], fix_mode=False)
    assert ",line=1," in out


def test_data_escapes_percent_and_newlines_like_the_toolkit():
    assert escape_data("100%\r\ndone") == "100%25%0D%0Adone"


def test_properties_also_escape_colon_and_comma():
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_a_hostile_file_name_cannot_forge_a_second_command():
    path = "x,line=99::\n::error title=forged::pwned:/adapter_config.json"
    out = render([FileResult(path, [finding(path=path, message="bad\n::warning::forged")])], fix_mode=False)
    assert out.count("\n") == 1
    assert out.startswith(
        "::error file=x%2Cline=99%3A%3A%0A%3A%3Aerror title=forged%3A%3Apwned%3A/adapter_config.json,")
    assert out.endswith("::bad%0A::warning::forged (fixable with --fix) [missing-dropout]\n")


def test_fixed_findings_are_not_annotated():
    out = render([FileResult("c.json", [finding(path="c.json", fixed=True)])], fix_mode=True)
    assert out == ""


def test_a_failed_write_is_an_error_on_the_file():
    out = render([FileResult("c.json", write_error="read-only file system")], fix_mode=True)
    assert out == "::error file=c.json,line=1,title=adapter-guard::could not write the fix: read-only file system\n"


def test_a_finding_that_names_no_file_has_no_file_property():
    out = render([FileResult("<built-in gpt-oss>", [finding("AG601", "<built-in gpt-oss>", "drift", fix=None)])],
                 fix_mode=False)
    assert out == "::error title=adapter-guard (AG601)::drift [gpt-oss-cache-drift]\n"


def test_an_absolute_path_below_the_working_directory_is_made_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = os.path.join(str(tmp_path), "a", "adapter_config.json")
    out = render([FileResult(path, [finding(path=path)])], fix_mode=False)
    assert out.startswith("::error file=a/adapter_config.json,")
