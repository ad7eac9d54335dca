"""The pipeline: discover -> read -> infer -> rules -> plan fixes -> apply -> results.

The engine knows nothing about output formats; the CLI hands its results to a
reporter and turns them into an exit code with ``exit_code``.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import jsondoc
from .atomic import atomic_write
from .check import Emitter, Inputs, check_weights, read_base_layers, read_config_bytes, run_rules
from .discover import discover
from .findings import FileResult, Finding
from .rules import ERROR, INFO, SAFE, WARNING
from .settings import Settings

#: Above this many files the work is spread over processes (one per core).
PARALLEL_THRESHOLD = 64


def _read_config(path: Path, result: FileResult, settings: Settings) -> bytes | None:
    target = _linked_outside(path, settings.root)
    if target is not None:
        result.findings.append(
            Finding("AG006", str(path), f"links to `{target}`, outside `{settings.root}`; it is read but never written")
        )
    try:
        return read_config_bytes(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, FileNotFoundError) and path.is_symlink():
            reason = "dangling symbolic link"
        result.findings.append(Finding("AG005", str(path), f"cannot read the config: {reason}"))
        return None


def _linked_outside(path: Path, root: Path) -> Path | None:
    """Where ``path`` really is, when a symbolic link (the file, or a directory on
    its way) takes it out of ``root``; None otherwise."""
    try:
        target, root = path.resolve(), root.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13): reading says so
        return None
    if target.is_relative_to(root):
        return None
    # A path named outside the root without any link is the user's own choice.
    if path.is_symlink() or Path(os.path.abspath(path)).is_relative_to(root):
        return target
    return None


def lint(path: Path, data: bytes, settings: Settings) -> tuple[list[Finding], jsondoc.Document | None]:
    """All lint findings for one config's bytes, plus the parsed document."""
    spath = str(path)
    try:
        doc = jsondoc.load(data)
    except jsondoc.JsonDocError as exc:
        return [Finding("AG001", spath, str(exc), line=getattr(exc, "line", None))], None
    findings = [
        Finding("AG002", spath, f"key {key!r} appears more than once in {_where(obj)}", json_path=obj + (key,))
        for obj, key in doc.duplicates
    ]
    findings += [
        Finding("AG004", spath, f"`{_where(p)}` is {_literal(doc, p)}, which is not valid JSON (NaN/Infinity)", json_path=p)
        for p in doc.nonfinite
    ]
    config = doc.value
    if not isinstance(config, dict):
        findings.append(Finding("AG003", spath, f"the top level is a JSON {_json_type(config)}, not an object"))
        return findings, doc

    weights = Emitter(spath)
    adapter_dir = path.parent
    shape = check_weights(adapter_dir, weights, config.get("fine_tune_type"), settings.lfs())
    total, source = None, None
    for base in ([settings.base_model] if settings.base_model else []) + [adapter_dir]:
        total, source = read_base_layers(base)
        if total is not None:
            break
    findings += weights.findings
    findings += run_rules(Inputs(config, shape, total, source), spath)
    return findings, doc


def _where(json_path) -> str:
    return ".".join(str(p) for p in json_path) or "the top-level object"


def _json_type(value) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _literal(doc, json_path) -> str:
    span = doc.span(json_path)
    return doc.text[span[0] : span[1]] if span else "not finite"


def plan_fixes(findings: list[Finding], doc: jsondoc.Document, unsafe: bool) -> tuple[str, list[Finding]]:
    """Apply every allowed fix to the text, one at a time; return the new text and the findings applied."""
    text, applied = doc.text, []
    current = doc
    for finding in findings:
        fix = finding.fix
        if fix is None or (fix.applicability != SAFE and not unsafe):
            continue
        try:
            text = current.set_values(list(fix.sets))
            current = jsondoc.load(text.encode("utf-8"))
        except (jsondoc.JsonDocError, ValueError):
            continue  # the path runs through a value of the wrong type; the finding stays
        applied.append(finding)
    return text, applied


def process(path: Path, settings: Settings) -> FileResult:
    """Lint one config, plan or apply its fixes, and return the result."""
    result = FileResult(str(path))
    data = _read_config(path, result, settings)
    enabled = settings.enabled
    linked_outside = any(f.code == "AG006" for f in result.findings)
    result.findings = [f for f in result.findings if f.code in enabled]
    if data is None:
        return result
    findings, doc = lint(path, data, settings)
    findings = [f for f in findings if f.code in enabled]
    if linked_outside:
        # Never written through, so not fixable; and no diff, which would print a
        # file from outside the repository (a link to, say, credentials).
        for finding in findings:
            finding.fix = None

    if doc is not None and any(f.fix for f in findings):
        new_text, applied = plan_fixes(findings, doc, settings.unsafe_fixes)
        if applied and new_text != doc.text:
            result.diff = jsondoc.unified_diff(str(path), doc.text, new_text)
            if settings.writes:
                _write(path, new_text, result, settings)
            if result.written:
                # Re-lint what is on disk now: what remains is what the fix did not settle.
                remaining, doc = lint(path, new_text.encode("utf-8"), settings)
                remaining = [f for f in remaining if f.code in enabled]
                still = {(f.code, f.message) for f in remaining}
                for finding in applied:
                    finding.fixed = (finding.code, finding.message) not in still
                findings = [f for f in findings if f.fixed] + remaining
    result.findings += findings

    if settings.smoke and doc is not None and isinstance(doc.value, dict):
        from .mlx.smoke import run_smoke

        smoke = run_smoke(path, doc.value, base_model=settings.base_model, require=settings.require_smoke)
        result.findings += [f for f in smoke.findings if f.code in enabled]
        result.notes += smoke.notes
        result.checks.add("smoke")
    if settings.gpt_oss and doc is not None and isinstance(doc.value, dict):
        from .mlx.gpt_oss import gpt_oss_findings

        found, lines = gpt_oss_findings(path, doc.value, base_model=settings.base_model)
        result.findings += [f for f in found if f.code in enabled]
        result.notes += lines
        if found or lines:  # ([], []) means the adapter's base is not gpt-oss
            result.checks.add("gpt-oss")

    if doc is not None:
        for finding in result.findings:
            if finding.line is None:
                finding.line = _line(doc, finding)
    return result


def _line(doc: jsondoc.Document, finding: Finding) -> int:
    if finding.json_path is None:
        return 1
    return doc.key_line(finding.json_path)


def _write(path: Path, text: str, result: FileResult, settings: Settings) -> None:
    if _linked_outside(path, settings.root) is not None:
        result.write_error = f"not fixed: it links outside `{settings.root}`"
        return
    # A link inside the root is written through: atomic_write refuses to replace a link.
    target = path.resolve() if path.is_symlink() else path
    try:
        atomic_write(target, text.encode("utf-8"))
    except OSError as exc:
        result.write_error = f"not fixed: {exc}"
        return
    result.written = True


def run(settings: Settings) -> list[FileResult]:
    paths = discover(settings.paths, root=settings.root, exclude=settings.exclude, force_exclude=settings.force_exclude)
    if len(paths) >= PARALLEL_THRESHOLD and not (settings.smoke or settings.gpt_oss) and (os.cpu_count() or 1) > 1:
        return _run_parallel(paths, settings)
    return [process(p, settings) for p in paths]


def _run_parallel(paths: list[Path], settings: Settings) -> list[FileResult]:
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    workers = min(os.cpu_count() or 1, 8)
    chunk = max(1, len(paths) // (workers * 10))  # small chunks: no worker idles at the end
    context = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(process, paths, [settings] * len(paths), chunksize=chunk))


FAILING = {"error": (ERROR,), "warning": (ERROR, WARNING), "info": (ERROR, WARNING, INFO), "never": ()}


def exit_code(results: list[FileResult], settings: Settings) -> int:
    """0: nothing remains; 1: findings remain (or --diff had diffs, or a fix was made
    with --exit-non-zero-on-fix). Internal errors are handled by the CLI (2)."""
    failing = FAILING[settings.fail_on]
    for result in results:
        if result.diff and settings.diff:
            return 1
        if result.written and settings.exit_non_zero_on_fix:
            return 1
        for finding in result.findings:
            if finding.fixed:
                continue
            if finding.severity in failing or (finding.code == "AG501" and settings.require_smoke):
                return 1
    return 0
