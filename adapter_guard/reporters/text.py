"""``--output-format text``: one line per finding, as ruff prints them."""

from __future__ import annotations

import re

from ..findings import FileResult
from ..registry import SAFE, UNSAFE

# Everything str.splitlines() or a terminal treats as a line break or a control
# sequence (C0, DEL, C1, U+2028/9), and the lone surrogates that stand for
# undecodable bytes in a file name (they cannot be encoded to UTF-8 for stdout).
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for the raw byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """A file name or value that cannot forge extra output lines or terminal escapes."""
    return _UNPRINTABLE.sub(_escape, text)


def _path(path: str) -> str:
    # A line starting with "::" is a workflow command to a GitHub runner reading
    # this report; "./::x" names the same file and is not one.
    path = printable(path)
    return "./" + path if path.startswith(":") else path


#: How many failing adapters a target line names before it says "and N more".
_TARGET_NAMES = 3


def _targets(results: list[FileResult]) -> list[str]:
    """One line per --target: how many adapters have no problem there, and which fail.
    Only the target's own findings count; an adapter's format findings are listed above."""
    labels: dict[str, None] = {}
    for result in results:
        labels.update(dict.fromkeys(result.targets))
    lines = []
    for label in labels:
        verdicts = [(r.path, r.targets[label]) for r in results if label in r.targets]
        counts = [(n, word) for word, n in (
            ("ok", sum(v == "ok" for _, v in verdicts)),
            ("warn", sum(v == "warns" for _, v in verdicts)),
            ("fail", sum(v == "fails" for _, v in verdicts)),
            ("not judged", sum(v == "n/a" for _, v in verdicts)),
        ) if n]
        line = f"target {printable(label)}: " + ", ".join(f"{n} {word}" for n, word in counts)
        failing = [_path(p) for p, v in verdicts if v == "fails"]
        if failing:
            more = f" and {len(failing) - _TARGET_NAMES} more" if len(failing) > _TARGET_NAMES else ""
            line += f" ({', '.join(failing[:_TARGET_NAMES])}{more} fail)"
        lines.append(line)
    return lines


def render(results: list[FileResult], *, fix_mode: bool, verbose: bool = False) -> str:
    lines: list[str] = []
    remaining = fixed = safe = unsafe = 0
    for result in results:
        if verbose and result.format is not None:
            lines.append(f"{_path(result.path)}: format: {result.format}")
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
                elif finding.fix.applicability == UNSAFE:
                    unsafe += 1
            severity = "" if finding.severity == "error" else f" ({finding.severity})"
            lines.append(
                f"{_path(finding.path)}:{finding.line or 1}: {finding.code}{marker}{severity} {printable(finding.message)}"
            )
        if result.write_error:
            lines.append(f"{_path(result.path)}: {printable(result.write_error)}")
        lines.extend(f"{_path(result.path)}: {printable(note)}" for note in result.notes)
    # The GitHub runner reads a line starting with "::" (or the older "##[") as a workflow
    # command; "./" in front keeps a file named "::error ..." the same path, and inert.
    lines = [f"./{line}" if line.lstrip().startswith(("::", "##[")) else line for line in lines]
    lines += _targets(results)
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
