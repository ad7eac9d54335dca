"""``--output-format json``: a list of findings.

Each finding is an object with: ``code``, ``name``, ``severity`` (error,
warning, info), ``path``, ``line`` (1-based, the line of the offending key),
``message``, ``fixable``, ``fix_applicability`` (safe, unsafe, display-only or null),
``fixed``, ``url`` (the rule's documentation) and ``format`` (the adapter's
format as detected: mlx-lm, mlx-lm-pre-0.19, mlx-vlm, mlx-vlm-legacy, adapters-npz,
peft-lora, peft-other, unknown; null when the config could not be read).
"""

from __future__ import annotations

import json

from ..findings import FileResult


def render(results: list[FileResult], *, fix_mode: bool) -> str:
    findings = [{**f.to_json(), "format": r.format} for r in results for f in r.findings]
    return json.dumps(findings, indent=2, ensure_ascii=True) + "\n"
