"""Unified diffs, read two ways.

- ``suggestions``: turn the fixer's diff into whole-line replacements of the
  current file, the shape a GitHub ```` ```suggestion ```` needs.
- ``commentable_lines``: which lines of the new file a PR's diff shows, because
  a review comment on any other line makes GitHub reject the whole review (422).

Lines end at "\n" only, as in git: a JSON value may hold a raw U+2028, NEL,
``\x0b`` or ``\x0c``, and ``str.splitlines`` would cut the line there and
make a suggestion that truncates the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Suggestion:
    """Replace lines ``start``..``end`` (1-based, inclusive) of the current file with ``lines``."""

    start: int
    end: int
    lines: tuple[str, ...]


def split_lines(text: str) -> list[str]:
    """``text`` cut at "\n" only, without a last empty piece after a final newline."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _hunks(diff: str):
    """Yield (old_start, new_start, body lines) for each hunk; file headers are skipped."""
    header = None
    body: list[str] = []
    for line in split_lines(diff):
        match = _HUNK.match(line)
        if match:
            if header:
                yield (*header, body)
            old_start, old_len = int(match[1]), int(match[2] if match[2] is not None else 1)
            new_start, new_len = int(match[3]), int(match[4] if match[4] is not None else 1)
            # A zero-length side names the line *before* the hunk.
            header = (old_start + (old_len == 0), new_start + (new_len == 0))
            body = []
        elif header and line[:1] in (" ", "-", "+", "\\"):
            body.append(line)
        elif header and line == "":
            body.append(" ")  # some tools strip the space of an empty context line
    if header:
        yield (*header, body)


def suggestions(diff: str) -> list[Suggestion]:
    """Whole-line replacements of the old side of ``diff``, one per changed block.

    A pure insertion has no old line to replace, so it is anchored on the
    context line before it (or after it, at the top of a hunk) and repeats it.
    """
    out: list[Suggestion] = []
    for old_no, _new_no, body in _hunks(diff):
        removed: list[tuple[int, str]] = []
        added: list[str] = []
        previous: tuple[int, str] | None = None
        waiting: list[str] | None = None  # an insertion at the hunk top, anchored on the next line

        def flush() -> None:
            nonlocal waiting
            if removed:
                out.append(Suggestion(removed[0][0], removed[-1][0], tuple(added)))
            elif added and previous is not None:
                out.append(Suggestion(previous[0], previous[0], (previous[1], *added)))
            elif added:
                waiting = list(added)
            removed.clear()
            added.clear()

        for line in body:
            kind, text = line[:1], line[1:]
            if kind == " ":
                flush()
                if waiting is not None:
                    out.append(Suggestion(old_no, old_no, (*waiting, text)))
                    waiting = None
                previous = (old_no, text)
                old_no += 1
            elif kind == "-":
                removed.append((old_no, text))
                old_no += 1
            elif kind == "+":
                added.append(text)
        flush()
    return out


def commentable_lines(patch: str | None) -> list[set[int]]:
    """New-file line numbers shown by a PR file's ``patch``, one set per hunk.

    Added and context lines count; a multi-line suggestion must fit in one hunk.
    """
    if not patch:
        return []
    out = []
    for _old_no, new_no, body in _hunks(patch):
        lines = set()
        for line in body:
            if line[:1] in (" ", "+"):
                lines.add(new_no)
                new_no += 1
        out.append(lines)
    return out


def in_diff(suggestion: Suggestion, hunks: list[set[int]]) -> bool:
    span = set(range(suggestion.start, suggestion.end + 1))
    return any(span <= hunk for hunk in hunks)
