"""Generate the rule documentation from the registry.

    python -m adapter_guard.docs   # rewrites the README table and docs/rules.md

A test fails when either drifts from ``registry.RULES``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .registry import RULES

BEGIN, END = "<!-- rules-table:begin -->", "<!-- rules-table:end -->"


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


def splice_readme(text: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _: f"{BEGIN}\n{rule_table()}\n{END}", text)


def main(root: Path = Path(".")) -> int:
    readme = root / "README.md"
    readme.write_text(splice_readme(readme.read_text(encoding="utf-8")), encoding="utf-8")
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "rules.md").write_text(rules_reference(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
