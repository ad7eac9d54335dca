"""The Markdown step summary and PR comment body.

A CommonMark + GFM-table renderer (markdown-it-py) is the oracle: what a file
name or JSON value contains must come out as literal text in one table cell.
"""

from __future__ import annotations

import html as htmllib
import re
from html.parser import HTMLParser

from markdown_it import MarkdownIt

from adapter_guard.findings import FileResult, Finding
from adapter_guard.reporters.markdown import (
    COMMENT_LIMIT,
    COMMENT_MARKER,
    escape,
    fence,
    render,
    render_comment,
    render_report,
)
from adapter_guard.registry import RULES

from github_results import clean_result, finding, fixable_result

HOSTILE = "adapters/`<img src=x onerror=alert(1)>`@octocat|*bold*[x](y)\n# h/adapter_config.json"


class Html(HTMLParser):
    """Tags and table cells of rendered HTML."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def to_html(markdown: str) -> Html:
    return Html(MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown))


def mentions(text: str) -> list[str]:
    return re.findall(r"(?<![\w`])@[A-Za-z0-9]", text)


def test_a_hostile_file_name_stays_literal_text_in_its_cell():
    body = render_comment([FileResult(HOSTILE, [finding(path=HOSTILE)])])
    html = to_html(body)
    header, row = html.rows
    assert len(row) == len(header) == 5
    assert row[2] == HOSTILE.replace("\n", " ").replace("@", "@\u2060")
    assert "img" not in html.tags and "em" not in html.tags and "h1" not in html.tags
    assert html.tags.count("a") == 1  # the rule's docs link, nothing from the name


def test_a_hostile_name_cannot_ping_anyone():
    body = render_comment([FileResult(HOSTILE, [finding(path=HOSTILE, message="ask @octo-org/team and @alice")])])
    assert mentions(body) == []


def test_json_values_in_messages_are_escaped_too():
    message = "rank is `8` | <script>x</script> & \\ `"
    html = to_html(render_comment([FileResult("c.json", [finding(path="c.json", message=message)])]))
    assert html.rows[1][4] == message
    assert "script" not in html.tags


def test_each_code_links_to_its_rule_docs():
    body = render_comment([fixable_result()])
    assert f"[AG205]({RULES['AG205'].url})" in body


def test_the_comment_starts_with_the_hidden_marker():
    assert render_comment([fixable_result()]).startswith(COMMENT_MARKER + "\n")


def test_the_summary_line_counts_problems_and_fixes():
    warning = finding("AG304", "b/adapter_config.json", "x", fix=None)
    body = render_comment([fixable_result(), FileResult("b/adapter_config.json", [warning])],
                          scope="touched by this pull request")
    assert ("Found **2 problems** (1 error, 1 warning) in 2 of 2 adapter configs touched by this pull request. "
            "1 can be fixed with `adapter-guard --fix`.") in body


def test_unsafe_fixes_are_counted_apart():
    results = [FileResult("c.json", [finding(path="c.json"), finding("AG203", "c.json", "rank 8 != 4", fix="unsafe")])]
    assert "1 can be fixed with `adapter-guard --fix`, 1 more with `--unsafe-fixes`." in render_comment(results)
    only_unsafe = [FileResult("c.json", [finding("AG203", "c.json", "rank 8 != 4", fix="unsafe")])]
    assert "1 can be fixed with `--unsafe-fixes`." in render_comment(only_unsafe)


def test_a_fixable_file_gets_its_diff_in_a_diff_block():
    result = fixable_result()
    body = render_comment([result])
    assert fence(result.diff, "diff") in body
    assert '+        "dropout": 0.0' in body


def test_a_diff_holding_backticks_cannot_close_its_fence():
    content = 'x\n```\n<img src=x>\n````\n'
    block = fence(content, "diff")
    assert block.startswith("`````diff\n") and block.endswith("\n`````")
    html = to_html(block)
    assert html.tags == ["pre", "code"]


def test_a_clean_run_says_so():
    assert "✅ No problems in 1 adapter config touched by this pull request." in render_comment(
        [clean_result()], scope="touched by this pull request")


def test_fixed_findings_leave_the_table_and_are_counted():
    body = render_report([FileResult("c.json", [finding(path="c.json", fixed=True)], written=True)], fix_mode=True)
    assert "✅ No problems in 1 adapter config. Fixed 1 finding." in body
    assert "| Code |" not in body


def test_a_huge_report_is_truncated_under_the_comment_limit_with_a_note():
    results = [FileResult(f"adapters/{i}/adapter_config.json", [finding(path=f"adapters/{i}/adapter_config.json",
                                                                        message="x" * 400)]) for i in range(400)]
    body = render_comment(results)
    assert len(body.encode("utf-8")) <= COMMENT_LIMIT
    assert body.startswith(COMMENT_MARKER)
    assert re.search(r"Truncated to fit GitHub's size limit: \d+ findings not shown", body)
    assert len(to_html(body).rows[1]) == 5  # the table is still well formed


def test_truncation_counts_what_was_left_out():
    results = [FileResult(f"{i}.json", [finding(path=f"{i}.json")]) for i in range(50)]
    body = render_report(results, fix_mode=False, limit=3000)
    shown = len(to_html(body).rows) - 1
    left_out = int(re.search(r"(\d+) findings not shown", body)[1])
    assert shown + left_out == 50
    assert len(body.encode()) <= 3000


def test_the_step_summary_stays_under_one_mebibyte():
    results = [FileResult(f"{i}.json", [finding(path=f"{i}.json", message="é" * 400)]) for i in range(5000)]
    assert len(render(results, fix_mode=False).encode("utf-8")) <= 1024 * 1024


def test_escape_flattens_control_characters():
    assert escape("a\r\nb\tc\x00") == "a  b c "


def rendered_text(markdown: str) -> str:
    """What a reader sees: rendered, tags dropped, entities decoded."""
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    return htmllib.unescape(re.sub(r"<[^>]+>", "", html)).strip()


def test_an_escaped_hash_still_autolinks_so_references_get_a_joiner():
    # GitHub links "\#12" as it links "#12": the backslash is gone before references are found.
    text = rendered_text(escape("see #12, owner/repo#3 and GH-4 and \\#5"))
    assert not re.search(r"#[0-9]|GH-[0-9]", text)
    assert text.replace("\u2060", "") == "see #12, owner/repo#3 and GH-4 and \\#5"


def test_urls_in_values_do_not_autolink():
    text = rendered_text(escape("fetched from https://evil.example and www.evil.example"))
    assert "://" not in text and "www." not in text
    assert text.replace("\u2060", "") == "fetched from https://evil.example and www.evil.example"


def test_escaping_is_a_fixed_point_of_neutralise():
    # The fork poster neutralises the whole body again; what we render must not grow.
    from adapter_guard.reporters.markdown import neutralise

    for text in [HOSTILE, "@a &#64;b #1 GH-2 https://x www.y %40c \uff20d"]:
        once = escape(text)
        assert neutralise(once) == once


def test_the_truncation_note_points_at_something_that_has_the_full_report():
    results = [FileResult(f"{i}.json", [finding(path=f"{i}.json")]) for i in range(50)]
    body = render_report(results, fix_mode=False, limit=3000)
    assert "job log" not in body  # the log has annotations, not the diffs
    assert "Run `adapter-guard --diff` on the branch for the full report" in body


def test_a_lone_surrogate_in_a_message_is_shown_as_its_escape_and_the_comment_is_sendable():
    # JSON allows "\ud800" in a config value, and a message may quote it; UTF-8 cannot carry it.
    result = FileResult("m/adapter_config.json", [Finding("AG004", "m/adapter_config.json", "rank is '\ud800'")])

    body = render_comment([result])

    body.encode("utf-8")  # raised UnicodeEncodeError before
    assert "\ud800" not in body and "ud800" in body
