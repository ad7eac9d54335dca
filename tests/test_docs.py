"""Generated docs never drift from the rule registry, and the README's commands are what CI runs."""

from pathlib import Path

from adapter_guard.docs import rule_table, rules_reference, splice_readme, targets_reference
from adapter_guard.registry import RULES, Fixability

ROOT = Path(__file__).resolve().parent.parent


def test_readme_rule_table_matches_the_registry():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert rule_table() in readme, "run: python -m adapter_guard.docs"
    assert splice_readme(readme) == readme


def test_readme_targets_table_matches_the_profiles():
    from adapter_guard.docs import targets_summary

    assert targets_summary() in (ROOT / "README.md").read_text(encoding="utf-8"), "run: python -m adapter_guard.docs"


def test_rules_reference_matches_the_registry():
    assert (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") == rules_reference()


def test_targets_reference_matches_the_profiles():
    assert (ROOT / "docs" / "targets.md").read_text(encoding="utf-8") == targets_reference(), (
        "run: python -m adapter_guard.docs"
    )


def test_every_target_rule_is_registered_and_cites_its_source():
    from adapter_guard.targets import PROFILES
    from adapter_guard.targets.model import check_range

    seen, owner = set(), {}
    for profile in PROFILES.values():
        rows = ([profile.wrong_format] if profile.wrong_format else []) + list(profile.rules)
        for row in rows:
            assert row.code in RULES and row.code.startswith("AG9"), row.code
            # One code may have several rows (a behaviour whose source moved between releases), in one profile.
            assert owner.setdefault(row.code, profile.name) == profile.name, f"{row.code} is in two profiles"
            seen.add(row.code)
            check_range(row.versions)
            assert row.source and row.url.startswith("https://"), f"{row.code} names no source"
            assert row.fails, f"{row.code} says nothing for docs/targets.md"
    target_codes = {code for code in RULES if code.startswith("AG9")}
    assert target_codes <= seen, f"registered but in no profile: {sorted(target_codes - seen)}"


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


def test_rule_names_make_working_github_anchors():
    """GitHub drops dots from heading anchors: a name with one would break every link to its rule."""
    for rule in RULES.values():
        assert all(c.isalnum() or c == "-" for c in rule.name), rule.name
