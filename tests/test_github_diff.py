"""Reading unified diffs: fixer diffs into suggestions, PR patches into commentable lines."""

from __future__ import annotations

import subprocess

import pytest

from adapter_guard.github.diff import Suggestion, commentable_lines, in_diff, suggestions

import fake_github
from github_results import CONFIG_FIXED, CONFIG_WITHOUT_DROPOUT, new_file_patch, unified_diff


def apply(text: str, found: list[Suggestion]) -> str:
    """Apply suggestions bottom-up, as a reviewer clicking each would (git's lines: cut at "\n" only)."""
    lines = text.split("\n")
    for s in sorted(found, key=lambda s: s.start, reverse=True):
        lines[s.start - 1 : s.end] = list(s.lines)
    return "\n".join(lines)


def git_diff(tmp_path, old: str, new: str) -> str:
    """The diff real git writes between two versions of a file."""
    (tmp_path / "old.json").write_bytes(old.encode())
    (tmp_path / "new.json").write_bytes(new.encode())
    proc = subprocess.run(["git", "diff", "--no-index", "old.json", "new.json"], cwd=tmp_path,
                          capture_output=True)
    return proc.stdout.decode()


#: Characters str.splitlines() breaks on and git does not; JSON allows them raw inside a string.
LINE_LIKE = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\r"]


def test_a_changed_line_becomes_a_replacement_of_that_line():
    diff = unified_diff("c.json", CONFIG_WITHOUT_DROPOUT, CONFIG_FIXED)
    assert suggestions(diff) == [Suggestion(5, 5, ('        "scale": 20.0,', '        "dropout": 0.0'))]


def test_suggestions_rebuild_the_fixed_file():
    old = "{\n" + "".join(f'    "k{i}": {i},\n' for i in range(30)) + '    "end": 1\n}\n'
    new = old.replace('"k2": 2', '"k2": 20').replace('    "k20": 20,\n', "").replace(
        '    "k25": 25,\n', '    "k25": 25,\n    "added": true,\n')
    found = suggestions(unified_diff("c.json", old, new))
    assert len(found) == 3
    assert apply(old, found) == new


def test_an_insertion_at_the_top_is_anchored_on_the_next_line():
    old, new = "a\nb\n", "top\na\nb\n"
    assert suggestions(unified_diff("c", old, new)) == [Suggestion(1, 1, ("top", "a"))]


def test_an_insertion_is_anchored_on_the_line_before():
    old, new = "a\nb\n", "a\nmid\nb\n"
    assert suggestions(unified_diff("c", old, new)) == [Suggestion(1, 1, ("a", "mid"))]


def test_a_deletion_replaces_the_lines_with_nothing():
    old, new = "a\nb\nc\n", "a\nc\n"
    assert suggestions(unified_diff("c", old, new)) == [Suggestion(2, 2, ())]


def test_an_added_file_makes_every_line_commentable():
    assert commentable_lines(new_file_patch("a\nb\nc\n")) == [{1, 2, 3}]


def test_context_and_added_lines_are_commentable_removed_lines_are_not():
    patch = "@@ -10,4 +10,4 @@\n ctx\n-old\n+new\n ctx2\n ctx3\n@@ -40,2 +40,3 @@\n a\n+b\n c"
    assert commentable_lines(patch) == [{10, 11, 12, 13}, {40, 41, 42}]


def test_a_file_without_a_patch_has_no_commentable_lines():
    assert commentable_lines(None) == []


def test_a_suggestion_must_fit_in_one_hunk():
    hunks = [{10, 11, 12}, {13, 14}]
    assert in_diff(Suggestion(11, 12, ()), hunks)
    assert not in_diff(Suggestion(12, 13, ()), hunks)
    assert not in_diff(Suggestion(20, 20, ()), hunks)


@pytest.mark.parametrize("char", LINE_LIKE)
def test_a_raw_line_like_character_in_a_value_stays_inside_its_line(tmp_path, char):
    # The fix adds a comma to the line that holds the character, so the suggestion must carry it whole.
    old = '{\n    "rank": 8,\n    "note": "a' + char + 'b"\n}\n'
    new = '{\n    "rank": 8,\n    "note": "a' + char + 'b",\n    "dropout": 0.0\n}\n'
    found = suggestions(git_diff(tmp_path, old, new))
    assert apply(old, found) == new  # byte for byte: nothing cut at the character
    assert [(s.start, s.end) for s in found] == [(3, 3)]


@pytest.mark.parametrize("char", LINE_LIKE)
def test_commentable_lines_count_git_lines_as_the_fake_api_does(tmp_path, char):
    old = "".join(f'    "k{i}": "v{i}",\n' for i in range(12))
    new = old.replace('"v3"', '"v3' + char + 'x"').replace('"v9"', '"changed"')
    diff = git_diff(tmp_path, old, new)
    patch = diff[diff.index("@@"):].rstrip("\n")
    ours = commentable_lines(patch)
    independent = [lines for _, lines in fake_github.commentable_lines(patch)]
    assert ours == independent
    assert set().union(*ours) == set(range(1, 13))  # both hunks merge: every line of the 12 is shown
