"""Generated docs never drift from the rule registry, and the README's commands are what CI runs."""

from pathlib import Path

from adapter_guard.docs import rule_table, rules_reference, splice_readme
from adapter_guard.registry import RULES, Fixability

ROOT = Path(__file__).resolve().parent.parent


def test_readme_rule_table_matches_the_registry():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert rule_table() in readme, "run: python -m adapter_guard.docs"
    assert splice_readme(readme) == readme


def test_rules_reference_matches_the_registry():
    assert (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") == rules_reference()


def test_every_rule_has_a_kebab_case_name_and_a_grouped_code():
    for code, rule in RULES.items():
        assert code == rule.code and len(code) == 5 and code.startswith("AG") and code[2:].isdigit()
        assert rule.name == rule.name.lower() and " " not in rule.name and "_" not in rule.name
        assert rule.severity in ("error", "warning", "info")
        assert isinstance(rule.fix, Fixability)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = 'pip install -e ".[test]" && pytest'
    assert f"python3 -m venv .venv && . .venv/bin/activate && {test_command}" in readme
    assert f"python3 -m venv .venv && . .venv/bin/activate && {test_command}" in ci.splitlines()


def test_readme_example_output_is_what_the_cli_prints(monkeypatch, capsys):
    from adapter_guard.cli import main

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("$ adapter-guard examples/adapters\n") + len("$ adapter-guard examples/adapters\n")
    shown = readme[start : readme.index("```", start)]
    monkeypatch.chdir(ROOT)
    assert main(["examples/adapters"]) == 1
    assert capsys.readouterr().out == shown
