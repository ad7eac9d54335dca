"""``--output-format sarif``: a SARIF 2.1.0 log for GitHub code scanning.

Rule metadata (name, descriptions, help link, default level) comes from the
one rule registry; every rule is listed so ``ruleIndex`` values are stable.
Findings that name no file (the built-in gpt-oss regression) and failed writes
become tool execution notifications, since code scanning needs a file
location on every result.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..findings import FileResult, Finding
from ..registry import RULES, Rule
from .github import is_file_path, report_path

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/adapter-guard/adapter-guard"

_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_RULE_INDEX = {code: i for i, code in enumerate(RULES)}


def _rule_descriptor(rule: Rule) -> dict[str, Any]:
    fix = rule.fix.sentence
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.explanation},
        "help": {
            "text": f"{rule.explanation}\n\n{fix}\n\n{rule.url}",
            "markdown": f"{rule.explanation}\n\n{fix}\n\n[{rule.code} {rule.name}]({rule.url})",
        },
        "helpUri": rule.url,
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {
            "fixAvailability": rule.fix.availability.value,
            "fixApplicabilities": [a.value for a in rule.fix.ordered],
        },
    }


def artifact_uri(path: str) -> dict[str, str]:
    """An artifactLocation: relative to the checkout root when possible, percent-encoded."""
    relative = report_path(path)
    if Path(relative).is_absolute():
        return {"uri": Path(relative).as_uri()}
    # fsencode: a file name that is not UTF-8 is percent-encoded as its bytes.
    return {"uri": quote(os.fsencode(relative), safe="/"), "uriBaseId": "%SRCROOT%"}


def _result(finding: Finding, adapter_format: str | None) -> dict[str, Any]:
    properties = {
        "fixable": finding.fixable,
        "fixApplicability": finding.fix.applicability.value if finding.fix else None,
        "adapterFormat": adapter_format,
    }
    if "target" in finding.extra:  # a runtime target's finding (--target)
        properties["target"] = finding.extra["target"]
    return {
        "ruleId": finding.code,
        "ruleIndex": _RULE_INDEX[finding.code],
        "level": _LEVEL[finding.severity],
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": artifact_uri(finding.path),
                    "region": {"startLine": finding.line or 1},
                }
            }
        ],
        "properties": properties,
    }


def _notification(finding: Finding) -> dict[str, Any]:
    return {
        "level": _LEVEL[finding.severity],
        "message": {"text": f"{finding.path}: {finding.message}"},
        "associatedRule": {"id": finding.code, "index": _RULE_INDEX[finding.code]},
    }


def build(results: list[FileResult], *, fix_mode: bool) -> dict[str, Any]:
    """The SARIF log as a JSON-ready dict (fixed findings are left out)."""
    sarif_results, notifications = [], []
    for result in results:
        for finding in result.findings:
            if finding.fixed:
                continue
            if is_file_path(finding.path):
                sarif_results.append(_result(finding, result.format))
            else:
                notifications.append(_notification(finding))
        if result.write_error:
            notifications.append(
                {
                    "level": "error",
                    "message": {"text": f"could not write the fix: {result.write_error}"},
                    "locations": [{"physicalLocation": {"artifactLocation": artifact_uri(result.path)}}],
                }
            )
    # Every adapter checked, with its detected format, findings or not.
    artifacts = [
        {"location": artifact_uri(r.path), "properties": {"adapterFormat": r.format}}
        for r in results
        if r.format is not None and is_file_path(r.path)
    ]
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "adapter-guard",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule_descriptor(rule) for rule in RULES.values()],
                    }
                },
                "invocations": [invocation],
                **({"artifacts": artifacts} if artifacts else {}),
                "results": sarif_results,
            }
        ],
    }


def render(results: list[FileResult], *, fix_mode: bool) -> str:
    return json.dumps(build(results, fix_mode=fix_mode), indent=2, ensure_ascii=False) + "\n"
