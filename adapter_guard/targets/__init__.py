"""Runtime target profiles: "will it load there?" (``--target NAME[@VERSION][:KEY=VALUE,...]``).

One module per runtime holds its profile as data (``model.Profile``): the
formats it loads and a table of rules, each with the version range it applies
to and the source it was read from. ``docs/targets.md`` is generated from the
tables (``python -m adapter_guard.docs``) and a test keeps it in sync.

This package is imported only when a target is set: a plain lint never pays for it.
"""

from __future__ import annotations

from typing import Any

from ..findings import Finding
from ..readers import AdapterFiles
from ..registry import RULES
from . import llama_cpp, mlx_lm, mlx_vlm, peft, vllm
from .model import Context, Profile, Target, Verdict, format_version, in_range, parse_version

__all__ = ["PROFILES", "Target", "TargetError", "check_targets", "matrix_cell", "parse_target", "Verdict"]

PROFILES: dict[str, Profile] = {p.name: p for p in (mlx_lm.PROFILE, mlx_vlm.PROFILE, peft.PROFILE, vllm.PROFILE, llama_cpp.PROFILE)}

#: Formats no target judges: nothing is known about how a runtime treats them.
UNJUDGED = frozenset({"unknown", "peft-other"})


class TargetError(ValueError):
    """A --target the profiles do not know (a usage error, exit code 2)."""


def parse_target(spec: str) -> Target:
    """``NAME[@VERSION][:KEY=VALUE[,KEY=VALUE...]]`` -> Target. Raises TargetError."""
    text = spec.strip()
    head, _, opts = text.partition(":")
    name, at, version_text = head.partition("@")
    name = name.strip().lower()
    profile = PROFILES.get(name)
    if profile is None:
        raise TargetError(f"unknown target {name!r} in {spec!r}: choose from {', '.join(PROFILES)}")
    version = None
    if at:
        try:
            version = parse_version(version_text)
        except ValueError as exc:
            raise TargetError(f"target {spec!r}: {exc}") from None
    options: dict[str, int] = {}
    for item in filter(None, (o.strip() for o in opts.split(","))) if opts else ():
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if key not in profile.options:
            known = ", ".join(profile.options) or "none"
            raise TargetError(f"target {spec!r}: {profile.name} has no option {key!r} (options: {known})")
        if not eq or not value.strip().isdigit() or int(value) <= 0:
            raise TargetError(f"target {spec!r}: {key} must be a positive integer, like {key}=64")
        options[key] = int(value)
    return Target(profile, version, options)


def check_targets(
    targets: list[Target], config: dict[str, Any], fmt: str, files: AdapterFiles, path: str
) -> list[Finding]:
    """Every target finding for one adapter, in target order then table order."""
    findings: list[Finding] = []
    if fmt in UNJUDGED:
        return findings
    for target in targets:
        profile = target.profile
        options = {k: v for k, v in profile.options.items() if v is not None}
        options.update(target.options)
        context = Context(config, fmt, files, target.effective_version, options)
        if fmt not in profile.loads:
            rules = [profile.wrong_format] if profile.wrong_format is not None else []
        else:
            rules = list(profile.rules)
        for rule in target.applicable(rules):
            for verdict in rule.check(context):
                findings.append(
                    Finding(
                        rule.code, path, f"{target.describe}: {verdict.message}",
                        json_path=verdict.json_path, fix=verdict.fix, extra={"target": target.label},
                    )
                )
    return findings


#: Matrix cells, worst first.
FAILS, WARNS, OK, NOT_JUDGED = "fails", "warns", "ok", "n/a"


def matrix_cell(target: Target, fmt: str | None, findings: list[Finding]) -> str:
    """One adapter's verdict on one target, from the findings that remain."""
    if fmt is None or fmt in UNJUDGED:
        return NOT_JUDGED
    severities = {RULES[f.code].severity for f in findings if not f.fixed and f.extra.get("target") == target.label}
    if "error" in severities:
        return FAILS
    if "warning" in severities:
        return WARNS
    return OK
