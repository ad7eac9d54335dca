"""The plain data that flows from the rules to the fixer and the reporters."""

from __future__ import annotations

from .record import MutableRecord, Record
from .registry import RULES, Applicability

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the lint path
if TYPE_CHECKING:
    from typing import Any

#: A location inside a JSON document: object keys (str) and list indices (int).
JsonPath = tuple[str | int, ...]


class Fix(Record):
    """Set each JSON path to a value; the edit engine turns that into text edits.

    Missing parent objects on a path are created. Values are plain JSON values.
    """

    __slots__ = ("applicability", "sets", "description")

    def __init__(self, applicability: Applicability, sets: tuple[tuple[JsonPath, Any], ...], description: str) -> None:
        self.applicability = applicability
        self.sets = sets
        self.description = description


class Finding(MutableRecord):
    __slots__ = ("code", "path", "message", "json_path", "fix", "fixed", "line", "extra")

    def __init__(self, code: str, path: str, message: str, json_path: JsonPath | None = None, fix: Fix | None = None,
                 fixed: bool = False, line: int | None = None, extra: dict[str, Any] | None = None) -> None:
        self.code = code
        self.path = path
        self.message = message
        #: Where in the JSON document the finding points (for line numbers).
        self.json_path = json_path
        self.fix = fix
        self.fixed = fixed
        self.line = line
        self.extra = {} if extra is None else extra

    @property
    def rule(self):
        return RULES[self.code]

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def severity(self) -> str:
        return self.rule.severity

    @property
    def fixable(self) -> bool:
        return self.fix is not None

    def to_json(self) -> dict[str, Any]:
        data = {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "path": self.path,
            "line": self.line,
            "message": self.message,
            "fixable": self.fixable,
            "fix_applicability": self.fix.applicability.value if self.fix else None,
            "fixed": self.fixed,
            "url": self.rule.url,
        }
        if "target" in self.extra:  # a runtime target's finding (--target): which target
            data["target"] = self.extra["target"]
        return data


class FileResult(MutableRecord):
    """Everything adapter-guard learnt about one adapter_config.json."""

    __slots__ = ("path", "findings", "diff", "written", "write_error", "notes", "checks", "targets", "format")

    def __init__(self, path: str, findings: list[Finding] | None = None, diff: str = "", written: bool = False,
                 write_error: str | None = None, notes: list[str] | None = None, checks: set[str] | None = None,
                 targets: dict[str, str] | None = None, format: str | None = None) -> None:
        self.path = path
        self.findings = [] if findings is None else findings
        #: Unified diff of the planned or applied fix, if any.
        self.diff = diff
        #: Whether the file on disk was rewritten.
        self.written = written
        #: A message for a write that failed (read-only directory, symlink, ...).
        self.write_error = write_error
        #: Extra report lines from the MLX checks (e.g. per-scenario figures).
        self.notes = [] if notes is None else notes
        #: The deep checks that actually ran on this adapter ("smoke", "gpt-oss").
        self.checks = set() if checks is None else checks
        #: Per --target label, the adapter's verdict there: "ok", "warns", "fails" or "n/a" (targets.matrix_cell).
        self.targets = {} if targets is None else targets
        #: The adapter's format as detected ("mlx-lm", "peft-lora", ...; see formats.detect), None when
        #: the config could not be read or parsed.
        self.format = format
