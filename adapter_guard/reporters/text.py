"""``--output-format text``: one line per finding, as ruff prints them."""

from __future__ import annotations

from ..findings import FileResult
from ..rules import SAFE


def _clean(text: str) -> str:
    # A file name or value with a newline must not forge extra output lines.
    return text.replace("\r", "\\r").replace("\n", "\\n")


def render(results: list[FileResult], *, fix_mode: bool) -> str:
    lines: list[str] = []
    remaining = fixed = safe = unsafe = 0
    for result in results:
        for finding in result.findings:
            if finding.fixed:
                fixed += 1
                continue
            remaining += 1
            marker = ""
            if finding.fix is not None:
                if finding.fix.applicability == SAFE:
                    safe += 1
                    marker = " [*]"
                else:
                    unsafe += 1
            severity = "" if finding.severity == "error" else f" ({finding.severity})"
            lines.append(
                f"{_clean(finding.path)}:{finding.line or 1}: {finding.code}{marker}{severity} {_clean(finding.message)}"
            )
        if result.write_error:
            lines.append(f"{_clean(result.path)}: {_clean(result.write_error)}")
        lines.extend(f"{_clean(result.path)}: {_clean(note)}" for note in result.notes)
    checked = len(results)
    noun = "file" if checked == 1 else "files"
    if remaining == 0:
        summary = f"All checks passed ({checked} {noun}" + (f", {fixed} fixed)." if fixed else ").")
    else:
        summary = f"Found {remaining + fixed} finding{'s' if remaining + fixed != 1 else ''} in {checked} {noun}"
        summary += f" ({fixed} fixed, {remaining} remaining)." if fixed else "."
        hints = []
        if safe and not fix_mode:
            hints.append(f"{safe} fixable with `--fix`")
        if unsafe:
            hints.append(f"{unsafe} more with `--unsafe-fixes`")
        if hints:
            summary += "\n[*] " + "; ".join(hints) + "."
    lines.append(summary)
    return "\n".join(lines) + "\n"
