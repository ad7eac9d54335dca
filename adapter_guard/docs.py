"""Generate the rule documentation from the registry.

    python -m adapter_guard.docs   # rewrites the README table, docs/rules.md and docs/targets.md

A test fails when any of them drifts from ``registry.RULES`` or the target profiles.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .registry import RULES

BEGIN, END = "<!-- rules-table:begin -->", "<!-- rules-table:end -->"
TARGETS_BEGIN, TARGETS_END = "<!-- targets-summary:begin -->", "<!-- targets-summary:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def rule_table() -> str:
    rows = ["| Code | Name | Severity | Fix | What it means |", "| --- | --- | --- | --- | --- |"]
    for rule in RULES.values():
        rows.append(
            f"| [{rule.code}](docs/rules.md#{_anchor(rule)}) | `{rule.name}` | {rule.severity} "
            f"| {rule.fix.label} | {_cell(rule.summary)} |"
        )
    return "\n".join(rows)


def _anchor(rule) -> str:
    return f"{rule.code.lower()}-{rule.name}"


def rules_reference() -> str:
    parts = ["# adapter-guard rules", "", "Generated from `adapter_guard/registry.py` by `python -m adapter_guard.docs`.", ""]
    for rule in RULES.values():
        parts += [
            f"## {rule.code} {rule.name}",
            "",
            f"*{rule.severity}*" + (f", fix: {rule.fix.label}" if rule.fix.label else ""),
            "",
            rule.summary[0].upper() + rule.summary[1:] + ".",
            "",
            rule.explanation,
            "",
        ]
    return "\n".join(parts)


def targets_reference() -> str:
    """docs/targets.md: every target profile's table, with each rule's versions and source."""
    from .targets import PROFILES

    parts = [
        "# Runtime targets",
        "",
        "Generated from the profiles in `adapter_guard/targets/` by `python -m adapter_guard.docs`.",
        "",
        "`adapter-guard --target NAME[@VERSION][:KEY=VALUE,...]` (repeatable), or `targets = [...]` in",
        "`[tool.adapter-guard]`, also checks that each adapter loads on that runtime. Without a version the",
        "profile's newest checked release is assumed. A rule applies when the target version is in its range;",
        "its finding names the target and the version, and a target finding never changes what the format",
        "rules say. The PR comment and the step summary show the verdicts as a matrix: adapters down the",
        "side, targets across.",
        "",
    ]
    for profile in PROFILES.values():
        loads = ", ".join(f"`{f}`" for f in sorted(profile.loads))
        options = ", ".join(f"`{k}`" + (f" (default {v})" if v is not None else "") for k, v in profile.options.items())
        parts += [
            f"## {profile.name}",
            "",
            f"- Runtime: {profile.display} ({profile.package}); newest release checked: `{profile.latest}`.",
            f"- Loads these formats: {loads}.",
        ]
        if options:
            parts.append(f"- Options: {options}.")
        parts.append("")
        if profile.notes:
            parts += [profile.notes, ""]
        rules = ([profile.wrong_format] if profile.wrong_format else []) + list(profile.rules)
        if rules:
            parts += ["| Code | Rule | Versions | What fails | Source |", "| --- | --- | --- | --- | --- |"]
            for row in rules:
                rule = RULES[row.code]
                parts.append(
                    f"| [{rule.code}](rules.md#{_anchor(rule)}) | `{rule.name}` | `{_cell(row.versions)}` "
                    f"| {_cell(row.fails)} | [{_cell(row.source)}]({row.url}) |"
                )
            parts.append("")
    return "\n".join(parts)


def targets_summary() -> str:
    """The README's table of targets: one row per profile."""
    from .targets import PROFILES

    rows = ["| target | runtime | newest release checked | loads | rules |", "| --- | --- | --- | --- | --- |"]
    for profile in PROFILES.values():
        entries = ([profile.wrong_format] if profile.wrong_format else []) + list(profile.rules)
        codes = sorted({r.code for r in entries})
        anchor = profile.name.replace(".", "")
        span = f"{codes[0]}-{codes[-1]}" if len(codes) > 1 else "".join(codes)
        listed = f"[{span}](docs/targets.md#{anchor}): {len(codes)} rules" if codes else "none yet"
        loads = ", ".join(f"`{f}`" for f in sorted(profile.loads))
        rows.append(f"| `{profile.name}` | {profile.display} | `{profile.latest}` | {loads} | {listed} |")
    return "\n".join(rows)


def splice_readme(text: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    text = pattern.sub(lambda _: f"{BEGIN}\n{rule_table()}\n{END}", text)
    pattern = re.compile(re.escape(TARGETS_BEGIN) + ".*?" + re.escape(TARGETS_END), re.S)
    return pattern.sub(lambda _: f"{TARGETS_BEGIN}\n{targets_summary()}\n{TARGETS_END}", text)


def main(root: Path = Path(".")) -> int:
    readme = root / "README.md"
    readme.write_text(splice_readme(readme.read_text(encoding="utf-8")), encoding="utf-8")
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "rules.md").write_text(rules_reference(), encoding="utf-8")
    (root / "docs" / "targets.md").write_text(targets_reference(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
