"""``--output-format github``: workflow commands that GitHub shows as annotations.

One ``::error`` / ``::warning`` / ``::notice`` line per finding that remains,
with ``file``, ``line`` (where the offending key sits, or 1) and
``title=adapter-guard (CODE)``. Values are escaped as @actions/core does:
the message escapes ``%``, ``\\r``, ``\\n``; properties also ``:`` and ``,``.
So a file name or JSON value cannot end the command early or forge another.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..findings import FileResult, Finding
from ..registry import DISPLAY_ONLY, SAFE

_COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def is_file_path(path: str) -> bool:
    """False for pseudo paths such as ``<built-in gpt-oss>``, which name no file."""
    return not (path.startswith("<") and path.endswith(">"))


def report_path(path: str) -> str:
    """A POSIX path relative to the working directory when it lies below it (annotations need that)."""
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            candidate = candidate.relative_to(Path(os.getcwd()))
        except ValueError:
            pass
    return candidate.as_posix()


def _fix_hint(finding: Finding) -> str:
    if finding.fix is None or finding.fix.applicability is DISPLAY_ONLY:  # a suggestion is never applied
        return ""
    return " (fixable with --fix)" if finding.fix.applicability == SAFE else " (fixable with --unsafe-fixes)"


def command(kind: str, message: str, *, title: str, file: str | None = None, line: int | None = None) -> str:
    properties = []
    if file is not None:
        properties.append(f"file={escape_property(file)}")
        properties.append(f"line={line or 1}")
    properties.append(f"title={escape_property(title)}")
    return f"::{kind} {','.join(properties)}::{escape_data(message)}"


def annotation(finding: Finding) -> str:
    file = report_path(finding.path) if is_file_path(finding.path) else None
    return command(
        _COMMAND.get(finding.severity, "warning"),
        f"{finding.message}{_fix_hint(finding)} [{finding.name}]",
        title=f"adapter-guard ({finding.code})",
        file=file,
        line=finding.line,
    )


def render(results: list[FileResult], *, fix_mode: bool) -> str:
    lines = []
    for result in results:
        lines.extend(annotation(f) for f in result.findings if not f.fixed)
        if result.write_error:
            lines.append(
                command(
                    "error",
                    f"could not write the fix: {result.write_error}",
                    title="adapter-guard",
                    file=report_path(result.path),
                    line=1,
                )
            )
    return "".join(line + "\n" for line in lines)
