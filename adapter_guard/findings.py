"""The plain data that flows from the rules to the fixer and the reporters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .registry import RULES, Applicability

#: A location inside a JSON document: object keys (str) and list indices (int).
JsonPath = tuple[Any, ...]


@dataclass(frozen=True)
class Fix:
    """Set each JSON path to a value; the edit engine turns that into text edits.

    Missing parent objects on a path are created. Values are plain JSON values.
    """

    applicability: Applicability
    sets: tuple[tuple[JsonPath, Any], ...]
    description: str


@dataclass
class Finding:
    code: str
    path: str
    message: str
    #: Where in the JSON document the finding points (for line numbers).
    json_path: JsonPath | None = None
    fix: Fix | None = None
    fixed: bool = False
    line: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

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


@dataclass
class FileResult:
    """Everything adapter-guard learnt about one adapter_config.json."""

    path: str
    findings: list[Finding] = field(default_factory=list)
    #: Unified diff of the planned or applied fix, if any.
    diff: str = ""
    #: Whether the file on disk was rewritten.
    written: bool = False
    #: A message for a write that failed (read-only directory, symlink, ...).
    write_error: str | None = None
    #: Extra report lines from the MLX checks (e.g. per-scenario figures).
    notes: list[str] = field(default_factory=list)
    #: The deep checks that actually ran on this adapter ("smoke", "gpt-oss").
    checks: set[str] = field(default_factory=set)
    #: Per --target label, the adapter's verdict there: "ok", "warns", "fails" or "n/a" (targets.matrix_cell).
    targets: dict[str, str] = field(default_factory=dict)
    #: The adapter's format as detected ("mlx-lm", "peft-lora", ...; see formats.detect), None when
    #: the config could not be read or parsed.
    format: str | None = None
