"""Markdown for GitHub: the job's step summary and the sticky PR comment body.

Everything that comes from a file (paths, messages quoting JSON values, notes)
is escaped before it reaches Markdown, so a file named ``<img src=x>`@x|.json``
cannot break the table, inject HTML or ping anyone. Diffs go into fenced code
blocks whose fence is longer than any backtick run inside them.

Both outputs have a hard size limit on GitHub; the body is cut at a row or
block boundary and ends with a note saying what was left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..findings import FileResult, Finding
from ..registry import SAFE, UNSAFE
from .github import is_file_path, report_path

#: GitHub rejects issue comments longer than 65,536 characters; sizes here are
#: counted in UTF-8 bytes, which is never less than the character count.
COMMENT_LIMIT = 65_536
#: GitHub ignores a step summary larger than 1 MiB.
SUMMARY_LIMIT = 1024 * 1024
#: The hidden marker that identifies the sticky comment.
COMMENT_MARKER = "<!-- adapter-guard:sticky-comment -->"

_CELL_MAX = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PUNCT = re.compile(r"([\\`*_\[\]()#|~!{}])")
_BACKTICKS = re.compile(r"`+")
_TRUNCATION_RESERVE = 400

#: A word joiner: invisible, and it splits the token GitHub would link.
JOINER = "\u2060"
# "@" as GitHub may read it once entities are decoded: literal, numeric and
# named entities, percent-encoded, fullwidth and small forms.
_AT = r"(?:@|&#0*64;?|&#[xX]0*40;?|&commat;?|%40|\uff20|\ufe6b)"
_HASH = r"(?:#|&#0*35;?|&#[xX]0*23;?|&num;?|%23|\uff03|\ufe5f)"
_NEUTRALISE = re.compile(
    rf"(?P<at>{_AT})(?=[A-Za-z0-9_-])"  # @user, @org/team, owner/repo@sha
    rf"|(?P<hash>{_HASH})(?=[0-9])"  # #12, owner/repo#12
    r"|(?P<gh>\bGH-)(?=[0-9])"  # GH-12
    r"|(?P<scheme>(?<=[A-Za-z]):(?=//))"  # https://... (a bare URL autolinks)
    r"|(?P<www>\bwww\.)",
    re.IGNORECASE,
)


def neutralise(text: str) -> str:
    """Break every mention, issue reference and autolink in ``text`` with a word joiner.

    Idempotent: what it returns is left as it is, so the fork poster, which
    runs it on the whole body, does not grow a body this module rendered.
    """

    def repl(match: re.Match) -> str:
        kind = match.lastgroup
        if kind == "scheme":
            return ":" + JOINER
        if kind == "www":
            return "www" + JOINER + "."
        return "@" + JOINER if kind == "at" else match[0] + JOINER

    return _NEUTRALISE.sub(repl, text)


def escape(text: str, *, max_length: int | None = None) -> str:
    """Make ``text`` inert inline Markdown: literal, one line, no HTML, no @mentions."""
    text = _CONTROL.sub(" ", text)
    if max_length is not None and len(text) > max_length:
        text = text[: max_length - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _PUNCT.sub(r"\\\1", text)
    # A word joiner after "@" or "#" stops GitHub from reading a mention or a
    # reference ("\\#12" still links); it renders invisibly.
    return neutralise(text)


def fence(content: str, info: str = "") -> str:
    """A fenced code block that ``content`` cannot close early."""
    longest = max((len(run) for run in _BACKTICKS.findall(content)), default=0)
    ticks = "`" * max(3, longest + 1)
    if content and not content.endswith("\n"):
        content += "\n"
    return f"{ticks}{info}\n{content}{ticks}"


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


#: A lone surrogate (a JSON "\\ud800" in a config, or an undecodable file-name byte)
#: cannot be sent as UTF-8: it is shown as the escape it stands for.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _sendable(text: str) -> str:
    return _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _remaining(results: Sequence[FileResult]) -> list[Finding]:
    return [f for r in results for f in r.findings if not f.fixed]


def summary_line(results: Sequence[FileResult], *, fix_mode: bool, scope: str = "") -> str:
    """One sentence: what was checked, what is wrong, what a fix would do."""
    configs = sum(1 for r in results if is_file_path(r.path))
    where = f"{_plural(configs, 'adapter config')}{' ' + scope if scope else ''}"
    remaining = _remaining(results)
    fixed = sum(1 for r in results for f in r.findings if f.fixed)
    fixed_note = f" Fixed {_plural(fixed, 'finding')}." if fixed else ""
    if not remaining:
        if not results:
            return f"✅ No adapter configs{' ' + scope if scope else ''} to check."
        return f"✅ No problems in {where}.{fixed_note}"
    by_severity = {s: sum(1 for f in remaining if f.severity == s) for s in ("error", "warning", "info")}
    counts = ", ".join(_plural(n, s) for s, n in by_severity.items() if n)
    files = len({f.path for f in remaining if is_file_path(f.path)})
    place = f"in {files} of {where}" if files else "in the built-in checks"
    line = f"❌ Found **{_plural(len(remaining), 'problem')}** ({counts}) {place}.{fixed_note}"
    safe = sum(1 for f in remaining if f.fix is not None and f.fix.applicability == SAFE)
    unsafe = sum(1 for f in remaining if f.fix is not None and f.fix.applicability == UNSAFE)
    hints = []
    if safe and not fix_mode:
        hints.append(f"{safe} can be fixed with `adapter-guard --fix`")
    if unsafe:
        hints.append(f"{unsafe} more with `--unsafe-fixes`" if hints else f"{unsafe} can be fixed with `--unsafe-fixes`")
    if hints:
        line += " " + ", ".join(hints) + "."
    return line


#: How a target verdict (targets.matrix_cell) shows in the compatibility matrix.
#: A cell counts the target's own findings only; the Format column flags the adapter's own errors.
MATRIX_CELLS = {"ok": "✅ ok", "warns": "⚠️ warns", "fails": "❌ fails", "n/a": "— not judged"}


def target_labels(results: Sequence[FileResult]) -> list[str]:
    """The --target labels of a run, in the order given (the matrix's columns)."""
    labels: dict[str, None] = {}
    for result in results:
        labels.update(dict.fromkeys(result.targets))
    return list(labels)


def _row(finding: Finding) -> str:
    rule = finding.rule
    where = escape(report_path(finding.path), max_length=_CELL_MAX) if is_file_path(finding.path) else "—"
    return (
        f"| [{finding.code}]({rule.url}) | {rule.name} | {where} | {finding.line or 1} | "
        f"{escape(finding.message, max_length=_CELL_MAX)} |"
    )


def _diff_block(result: FileResult) -> str:
    title = "Applied to" if result.written else "Suggested change for"
    return f"**{title} {escape(report_path(result.path))}**\n\n{fence(result.diff, 'diff')}\n"


def _shows_diff(result: FileResult) -> bool:
    return bool(result.diff) and (result.written or any(f.fixable and not f.fixed for f in result.findings))


def render_report(
    results: Sequence[FileResult],
    *,
    fix_mode: bool,
    scope: str = "",
    marker: str = "",
    limit: int = SUMMARY_LIMIT,
    footer: str = "",
) -> str:
    """The Markdown report, at most ``limit`` UTF-8 bytes.

    Sections: marker, heading, summary line, findings table, one diff block
    per fixable file, write errors and notes. When the limit is reached,
    later rows and blocks are left out and a note says how many.
    """
    head = _sendable("".join(
        [
            f"{marker}\n" if marker else "",
            "### adapter-guard\n\n",
            summary_line(results, fix_mode=fix_mode, scope=scope),
            "\n",
        ]
    ))
    tail = _sendable(f"\n{footer}\n") if footer else ""
    budget = limit - _size(head) - _size(tail) - _TRUNCATION_RESERVE
    body: list[str] = []
    left_out = {"matrix row": 0, "finding": 0, "suggested change": 0, "note": 0}

    def add(piece: str, kind: str | None = None) -> None:
        """Append ``piece`` if it fits; ``kind`` names what is counted when it does not."""
        nonlocal budget
        piece = _sendable(piece)
        if _size(piece) <= budget and not any(left_out.values()):
            body.append(piece)
            budget -= _size(piece)
        elif kind:
            left_out[kind] += 1

    labels = target_labels(results)
    if labels:
        add("\n#### Will it load there?\n\n| Adapter | Format | " + " | ".join(f"`{escape(label)}`" for label in labels) + " |\n")
        add("| --- | --- |" + " :---: |" * len(labels) + "\n")
        for result in results:
            if result.targets:
                cells = " | ".join(MATRIX_CELLS[result.targets.get(label, "n/a")] for label in labels)
                own = any(f.severity == "error" and not f.fixed and "target" not in f.extra for f in result.findings)
                fmt = f"`{escape(result.format or 'unreadable')}`" + (" ❌ own errors" if own else "")
                add(f"| {escape(report_path(result.path), max_length=_CELL_MAX)} | {fmt} | {cells} |\n", "matrix row")
    remaining = _remaining(results)
    if remaining:
        add("\n| Code | Rule | File | Line | Message |\n| --- | --- | --- | --- | --- |\n")
        for finding in remaining:
            add(_row(finding) + "\n", "finding")
    diffs = [r for r in results if _shows_diff(r)]
    if diffs:
        add(f"\n#### {'Applied fixes' if fix_mode else 'Suggested changes'}\n\n")
        for result in diffs:
            add(_diff_block(result), "suggested change")
    extra = [f"- {escape(report_path(r.path))}: could not write the fix: {escape(r.write_error)}"
             for r in results if r.write_error]
    extra += [f"- {escape(report_path(r.path))}: {escape(note)}" for r in results for note in r.notes]
    if extra:
        add("\n#### Notes\n\n")
        for line in extra:
            add(line + "\n", "note")

    note = ""
    if any(left_out.values()):
        what = ", ".join(_plural(n, kind) for kind, n in left_out.items() if n)
        note = (f"\n> [!NOTE]\n> Truncated to fit GitHub's size limit: {what} not shown. "
                "Run `adapter-guard --diff` on the branch for the full report and every suggested change.\n")
    return head + "".join(body) + note + tail


def render_comment(results: Sequence[FileResult], *, fix_mode: bool = False, scope: str = "", footer: str = "") -> str:
    """The sticky PR comment body: marker first, under GitHub's comment limit."""
    return render_report(
        results, fix_mode=fix_mode, scope=scope, marker=COMMENT_MARKER, limit=COMMENT_LIMIT, footer=footer
    )


def render(results: list[FileResult], *, fix_mode: bool) -> str:
    """The step summary (same signature as the other renderers)."""
    return render_report(results, fix_mode=fix_mode, limit=SUMMARY_LIMIT)
