"""Tiny builders of FileResult/Finding for the GitHub reporter and comment tests.

They build the engine's output directly, so these tests do not depend on it.
"""

from __future__ import annotations

import difflib

from adapter_guard.findings import FileResult, Finding, Fix
from adapter_guard.registry import SAFE, UNSAFE

#: An adapter_config.json as a PR adds it: lora_parameters lacks dropout.
CONFIG_WITHOUT_DROPOUT = """\
{
    "fine_tune_type": "lora",
    "lora_parameters": {
        "rank": 8,
        "scale": 20.0
    },
    "num_layers": 4
}
"""
CONFIG_FIXED = CONFIG_WITHOUT_DROPOUT.replace('"scale": 20.0\n', '"scale": 20.0,\n        "dropout": 0.0\n')


def unified_diff(path: str, old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}")
    )


def new_file_patch(text: str) -> str:
    """The ``patch`` GitHub shows for a file the PR adds."""
    lines = text.splitlines()
    return f"@@ -0,0 +1,{len(lines)} @@\n" + "\n".join("+" + line for line in lines)


def finding(code: str = "AG205", path: str = "adapters/a/adapter_config.json",
            message: str = "lora_parameters.dropout is missing",
            *, line: int | None = 3, fix: str | None = SAFE, fixed: bool = False) -> Finding:
    planned = Fix(fix, ((("lora_parameters", "dropout"), 0.0),), "set dropout") if fix in (SAFE, UNSAFE) else None
    return Finding(code, path, message, json_path=("lora_parameters",), fix=planned, fixed=fixed, line=line)


def fixable_result(path: str = "adapters/a/adapter_config.json") -> FileResult:
    """A config whose one finding has a safe fix, with the diff the fixer would write."""
    return FileResult(path, [finding(path=path)], diff=unified_diff(path, CONFIG_WITHOUT_DROPOUT, CONFIG_FIXED))


def clean_result(path: str = "adapters/a/adapter_config.json") -> FileResult:
    return FileResult(path)
