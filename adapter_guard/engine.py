"""The pipeline: discover -> read -> infer -> rules -> plan fixes -> apply -> results.

The engine knows nothing about output formats; the CLI hands its results to a
reporter and turns them into an exit code with ``exit_code``.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from . import jsondoc
from .base import BaseLookup, find_base, layer_modules, run_cache
from .discover import discover
from .findings import FileResult, Finding
from .formats import lint_config, lint_lone_weights
from .formats.shared import parse_config
from .readers import WEIGHTS_NAMES, AdapterFiles, read_adapter_files, read_config_bytes, use_fast_header_parser
from .record import Record
from .registry import ERROR, INFO, SAFE, UNSAFE, WARNING, Applicability
from .settings import Settings

#: Above this many files the work is spread over processes (one per core).
PARALLEL_THRESHOLD = 64


#: During ``run``, what discovery learnt on its way (``discover``), by path: the configs it
#: reached without a symbolic link from a directory inside the root, which need not be
#: resolved again to know they are inside (writes check again: ``_write``), and the
#: listings of their directories, which need not be listed again.
_UNLINKED: frozenset[str] = frozenset()
_LISTINGS: dict[str, dict[str, bool]] = {}


def _read_config(path: Path, result: FileResult, settings: Settings) -> bytes | None:
    target = None if str(path) in _UNLINKED else _linked_outside(path, settings.root)
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
        target, root = path.resolve(), _resolved(root)
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13): reading says so
        return None
    if target.is_relative_to(root):
        return None
    # A path named outside the root without any link is the user's own choice.
    if path.is_symlink() or Path(os.path.abspath(path)).is_relative_to(root):
        return target
    return None


@lru_cache(maxsize=8)  # the root, resolved once per run instead of once per file
def _resolved(root: Path) -> Path:
    return root.resolve()


class AdapterRead(Record):
    """What one adapter directory holds besides the config, read once per config."""

    __slots__ = ("files", "base", "base_modules")

    def __init__(self, files: AdapterFiles, base: BaseLookup,
                 base_modules: dict[str, frozenset[str]] | None = None) -> None:
        self.files = files
        #: The base model's config.json and where it came from, or why there is none.
        self.base = base
        #: Per layer prefix, the modules mlx-lm's default key set wraps (the base weights' headers).
        self.base_modules = base_modules


def read_adapter(path: Path, settings: Settings, config: dict) -> AdapterRead:
    """The adapter directory's files and its base model, found as ``adapter_guard.base`` says.
    Fixes never edit the fields the lookup reads, so one read serves every fix pass."""
    adapter_dir = path.parent
    files = read_adapter_files(adapter_dir, lfs_headers=settings.lfs, entries=_LISTINGS.get(str(path)))
    lookup = find_base(
        config, adapter_dir, root=settings.root, base_model=settings.base_model,
        base_model_origin=settings.base_model_origin, fetch=settings.fetch_base_config, listing=files.entries,
    )
    modules = layer_modules(lookup.base.directory) if lookup.base is not None else None
    return AdapterRead(files, lookup, modules)


def lint(
    path: Path, data: bytes, settings: Settings, read: AdapterRead | None = None
) -> tuple[list[Finding], jsondoc.Document | None, str | None]:
    """All lint findings for one config's bytes, the parsed document, and the adapter's format.

    ``read`` is what ``read_adapter`` found; given, the directory is not read again.
    """
    findings, doc, format_name, _ = _lint(path, data, settings, read)
    return findings, doc, format_name


def _lint(
    path: Path, data: bytes, settings: Settings, read: AdapterRead | None
) -> tuple[list[Finding], jsondoc.Document | None, str | None, AdapterRead | None]:
    spath = str(path)
    findings, doc = parse_config(data, spath)
    if doc is None or not isinstance(doc.value, dict):
        return findings, doc, None, read
    config = doc.value
    if read is None:
        read = read_adapter(path, settings, config)
    lookup, base = read.base, read.base.base
    findings += [Finding(code, spath, message, json_path=(key,) if key else None) for code, message, key in lookup.problems]
    detection, checked = lint_config(
        config, read.files, spath,
        base=base.config if base else None, total_layers=base.num_layers if base else None,
        base_source=base.describe() if base else None, no_base_reason=lookup.reason, base_modules=read.base_modules,
    )
    if settings.targets:
        from .targets import check_targets

        checked += check_targets(settings.targets, config, detection.format.value, read.files, spath)
    if doc.duplicates:
        # Which of two same-named members was meant is not a fix's call: leave them.
        duplicated = [obj + (key,) for obj, key in doc.duplicates]
        for finding in checked:
            if finding.fix and any(p[: len(d)] == d for p, _ in finding.fix.sets for d in duplicated):
                finding.fix = None
    return findings + checked, doc, detection.format.value, read


def plan_fixes(findings: list[Finding], doc: jsondoc.Document, unsafe: bool) -> tuple[str, list[Finding]]:
    """Apply every allowed fix to the text, one at a time; return the new text and the findings applied."""
    text, applied = doc.text, []
    current = doc
    for finding in findings:
        fix = finding.fix
        if fix is None or not _applies(fix.applicability, unsafe):
            continue
        try:
            text = current.set_values(list(fix.sets))
            current = jsondoc.load(text.encode("utf-8"))
        except (jsondoc.JsonDocError, ValueError):
            continue  # the path runs through a value of the wrong type; the finding stays
        applied.append(finding)
    return text, applied


def _applies(applicability: Applicability, unsafe: bool) -> bool:
    return applicability is SAFE or (applicability is UNSAFE and unsafe)


#: Fix passes before giving up on reaching a fixed point (ruff stops at 100;
#: adapter-guard's fixes settle in two or three).
MAX_FIX_PASSES = 10


def fix_until_stable(
    path: Path, findings: list[Finding], doc: jsondoc.Document, settings: Settings, read: AdapterRead
) -> tuple[str, list[Finding], list[Finding]]:
    """Apply fixes and re-lint the result until no fix changes it, as ruff does.

    Returns the final text, the findings whose fixes were applied (in any
    pass), and the findings the final text still has.
    """
    enabled = settings.enabled
    applied: list[Finding] = []
    for _ in range(MAX_FIX_PASSES):
        text, done = plan_fixes(findings, doc, settings.unsafe_fixes)
        if not done or text == doc.text:
            break
        applied += done
        findings, new_doc, _ = lint(path, text.encode("utf-8"), settings, read)
        findings = [f for f in findings if f.code in enabled]
        if new_doc is None:  # cannot happen: every edit is re-parsed before it is kept
            break
        doc = new_doc
    return doc.text, applied, findings


def process(path: Path, settings: Settings) -> FileResult:
    """Lint one config, plan or apply its fixes, and return the result."""
    if path.name in WEIGHTS_NAMES and not path.is_dir():
        return _process_lone_weights(path, settings)
    result = FileResult(str(path))
    data = _read_config(path, result, settings)
    enabled = settings.enabled
    linked_outside = any(f.code == "AG006" for f in result.findings)
    result.findings = [f for f in result.findings if f.code in enabled]
    if data is None:
        return result
    findings, doc, result.format, read = _lint(path, data, settings, None)
    findings = [f for f in findings if f.code in enabled]
    if linked_outside:
        # Never written through, so not fixable; and no diff, which would print a
        # file from outside the repository (a link to, say, credentials).
        for finding in findings:
            finding.fix = None

    # Planning fixes re-lints every fixed text: only worth it when a fix is written
    # or a diff is shown (--fix, --diff, the markdown report, the GitHub outputs).
    if doc is not None and (settings.fix or settings.plans_fixes) and any(f.fix for f in findings):
        new_text, applied, remaining = fix_until_stable(path, findings, doc, settings, read)
        if applied and new_text != doc.text:
            result.diff = jsondoc.unified_diff(str(path), doc.text, new_text)
            if settings.writes:
                _write(path, new_text, result, settings)
            if result.written:
                # Fixed is what was applied; what remains is what the final text still has.
                for finding in applied:
                    finding.fixed = True
                findings = applied + remaining
                doc = jsondoc.load(new_text.encode("utf-8"))
    result.findings += findings

    if settings.smoke and doc is not None and isinstance(doc.value, dict):
        from .mlx.smoke import run_smoke

        smoke = run_smoke(path, doc.value, require=settings.require_smoke, base=_mlx_base(read))
        result.findings += [f for f in smoke.findings if f.code in enabled]
        result.notes += smoke.notes
        result.checks.add("smoke")
    if settings.gpt_oss and doc is not None and isinstance(doc.value, dict):
        from .mlx.gpt_oss import gpt_oss_findings

        found, lines = gpt_oss_findings(path, doc.value, base=_mlx_base(read))
        result.findings += [f for f in found if f.code in enabled]
        result.notes += lines
        if found or lines:  # ([], []) means the adapter's base is not gpt-oss
            result.checks.add("gpt-oss")

    if settings.targets:
        from .targets import matrix_cell

        result.targets = {t.label: matrix_cell(t, result.format, result.findings) for t in settings.targets}
    if doc is not None:
        for finding in result.findings:
            if finding.line is None:
                finding.line = _line(doc, finding)
    return result


def _mlx_base(read: AdapterRead | None):
    """The lint's base lookup, as the MLX checks take it: the same base for both, found
    only where ``adapter_guard.base`` looks (never a directory outside the repository)."""
    from .mlx.reload import from_lookup

    return from_lookup(read.base if read is not None else None)


def _process_lone_weights(path: Path, settings: Settings) -> FileResult:
    """A weights file discovery found with no adapter_config.json beside it."""
    result = FileResult(str(path))
    files = read_adapter_files(path.parent, lfs_headers=settings.lfs, entries=_LISTINGS.get(str(path)))
    detection, findings = lint_lone_weights(files, str(path), path.name)
    result.format = detection.format.value
    result.findings = [f for f in findings if f.code in settings.enabled]
    # No config, so no target judges it (AG007 / AG821 say what it lacks): shown as not judged.
    result.targets = dict.fromkeys((t.label for t in settings.targets), "n/a")
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
    from .atomic import atomic_write  # only a fix that is written needs it

    try:
        atomic_write(target, text.encode("utf-8"))
    except OSError as exc:
        result.write_error = f"not fixed: {exc}"
        return
    result.written = True


def run(settings: Settings) -> list[FileResult]:
    global _UNLINKED, _LISTINGS
    _resolved.cache_clear()  # the links under the root may have changed since the last run
    unlinked: set[str] = set()
    listings: dict[str, dict[str, bool]] = {}
    paths = discover(settings.paths, root=settings.root, exclude=settings.exclude, force_exclude=settings.force_exclude,
                     unlinked=unlinked, listings=listings)
    if len(paths) >= FAST_HEADER_THRESHOLD:
        use_fast_header_parser()
    workers = _workers(len(paths), settings)
    _UNLINKED, _LISTINGS = frozenset(unlinked), listings
    try:
        with run_cache():  # the base lookups many adapters share, done once per run
            if workers > 1:
                return _run_forked(paths, settings, workers)
            return [process(p, settings) for p in paths]
    finally:
        _UNLINKED, _LISTINGS = frozenset(), {}


#: From this many files on, headers are parsed with msgspec when it is installed:
#: its import (about 20 ms) costs as much as it saves on about 100 headers of 256 tensors.
FAST_HEADER_THRESHOLD = 128


def _workers(count: int, settings: Settings) -> int:
    """How many processes to spread ``count`` files over: one per usable core, up to 8."""
    if count < PARALLEL_THRESHOLD or settings.smoke or settings.gpt_oss or not hasattr(os, "fork"):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))  # what this process may use (taskset, cgroups), not the machine
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    return min(cores, 8)


def _run_forked(paths: list[Path], settings: Settings, workers: int) -> list[FileResult]:
    """``process`` over ``paths`` in ``workers`` processes: forked children take every
    ``workers``-th path and send their results back pickled; this process takes its share too.

    A plain fork split, not a process pool: no executor to import or start, no
    per-file messages, and interleaved shares keep the work balanced.
    """
    import pickle

    sys.stdout.flush()
    sys.stderr.flush()
    children = []
    for index in range(1, workers):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller
            status = 0
            try:
                os.close(read_end)
                try:
                    payload = pickle.dumps([process(p, settings) for p in paths[index::workers]])
                except BaseException as exc:  # handed to the parent, which raises it as its own
                    payload = pickle.dumps(exc)
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(payload)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(write_end)
        children.append((index, pid, read_end))

    results: list[FileResult | None] = [None] * len(paths)
    try:
        results[0::workers] = [process(p, settings) for p in paths[0::workers]]
    finally:
        shares = []
        for index, pid, read_end in children:
            with os.fdopen(read_end, "rb") as pipe:
                payload = pipe.read()
            os.waitpid(pid, 0)
            shares.append((index, payload))
    for index, payload in shares:
        share = pickle.loads(payload) if payload else RuntimeError("a worker process died")
        if isinstance(share, BaseException):
            raise share
        results[index::workers] = share
    return results


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
