"""The workflow_run side for fork PRs: post the saved comment, treating the artifact as untrusted."""

from __future__ import annotations

import html as htmllib
import json
import os
import re

import pytest
from github import Auth, Github
from markdown_it import MarkdownIt

from adapter_guard.findings import FileResult
from adapter_guard.github.comment import comment_body

from adapter_guard.github.post_artifact import main, post_artifact
from adapter_guard.reporters.markdown import COMMENT_LIMIT, COMMENT_MARKER

from adapter_guard.registry import DOCS_URL

from fake_github import BOT, FakeGitHub
from github_results import finding, fixable_result

BODY = f"{COMMENT_MARKER}\n### adapter-guard\n\nFound 1 problem.\n"


@pytest.fixture
def fake():
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def env(tmp_path, fake):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "completed",
                                 "workflow_run": {"event": "pull_request", "head_sha": fake.head_sha,
                                                  "head_repository": {"full_name": f"{fake.owner}/{fake.repo}"}}}))
    return {"GITHUB_EVENT_NAME": "workflow_run", "GITHUB_EVENT_PATH": str(event),
            "GITHUB_REPOSITORY": f"{fake.owner}/{fake.repo}", "GITHUB_API_URL": fake.api_url,
            "GITHUB_TOKEN": fake.token}


def artifact(tmp_path, number: str = "7\n", body: str = BODY):
    directory = tmp_path / "artifact"
    directory.mkdir(exist_ok=True)
    (directory / "pr-number").write_text(number)
    (directory / "comment.md").write_text(body, encoding="utf-8")
    return directory


def post(directory, fake, env):
    client = Github(base_url=fake.api_url, auth=Auth.Token(fake.token),
                    seconds_between_requests=0, seconds_between_writes=0)
    return post_artifact(directory, env=env, client=client)


def test_a_valid_artifact_is_posted_as_the_sticky_comment(tmp_path, fake, env):
    outcome = post(artifact(tmp_path), fake, env)
    assert outcome.status == "created"
    assert [c["body"] for c in fake.comments_by(BOT)] == [BODY]


def test_it_updates_the_comment_an_earlier_run_posted(tmp_path, fake, env):
    earlier = fake.add_comment(f"{COMMENT_MARKER}\nold", BOT)
    assert post(artifact(tmp_path), fake, env).status == "updated"
    assert earlier["body"] == BODY and len(fake.comments) == 1


@pytest.mark.parametrize("number", ["7; curl evil", "07", "-7", "1e3", "7\n8\n", "", "99999999999"])
def test_a_pr_number_that_is_not_plain_digits_is_refused(tmp_path, fake, env, number):
    outcome = post(artifact(tmp_path, number=number), fake, env)
    assert outcome.status == "failed" and "not a plain positive integer" in outcome.message
    assert fake.requests == []


def test_a_pr_number_naming_another_prs_head_is_refused(tmp_path, fake, env):
    fake.head_sha = "f" * 40  # the PR moved on, or the artifact names someone else's PR
    outcome = post(artifact(tmp_path), fake, env)
    assert outcome.status == "failed" and "the run that saved the comment tested" in outcome.message
    assert fake.writes() == []


def test_a_body_that_is_not_ours_is_refused(tmp_path, fake, env):
    outcome = post(artifact(tmp_path, body="Please merge, signed: the maintainers"), fake, env)
    assert outcome.status == "failed" and "not an adapter-guard comment" in outcome.message
    assert fake.requests == []


def test_an_oversized_body_is_refused(tmp_path, fake, env):
    outcome = post(artifact(tmp_path, body=BODY + "x" * COMMENT_LIMIT), fake, env)
    assert outcome.status == "failed" and "longer than" in outcome.message


def test_a_symlink_in_the_artifact_is_refused(tmp_path, fake, env):
    directory = artifact(tmp_path)
    (tmp_path / "secret").write_text("7\n")
    os.remove(directory / "pr-number")
    os.symlink(tmp_path / "secret", directory / "pr-number")
    outcome = post(directory, fake, env)
    assert outcome.status == "failed" and "not a regular file" in outcome.message


def test_mentions_in_the_body_are_neutralised(tmp_path, fake, env):
    post(artifact(tmp_path, body=BODY + "cc @maintainer @org/team\n"), fake, env)
    [posted] = fake.comments_by(BOT)
    assert "@maintainer" not in posted["body"] and "@\u2060maintainer" in posted["body"]


def test_only_a_workflow_run_event_is_accepted(tmp_path, fake, env):
    (tmp_path / "event.json").write_text(json.dumps({"pull_request": {"number": 7}}))
    outcome = post(artifact(tmp_path), fake, env)
    assert outcome.status == "failed" and "not a workflow_run event" in outcome.message


def test_main_exits_non_zero_when_refusing_and_never_prints_the_token(tmp_path, fake, env, capsys):
    fake.refuse_writes = 403  # the error body echoes the Authorization header
    assert main([str(artifact(tmp_path))], env=env) == 1
    assert main([str(artifact(tmp_path, number="x"))], env=env) == 1
    err = capsys.readouterr().err
    assert "could not post the comment: HTTP 403" in err and "refusing the artifact" in err
    assert fake.token not in err


# -- abuse: what a fork's code could put in the artifact ----------------------------------------

RULE_LINK = f"[AG205]({DOCS_URL}#ag205-missing-dropout)"


def rendered_outside_code(body: str) -> tuple[str, list[str]]:
    """(text GitHub would show outside code, after entity decoding; every link target) by a real CommonMark renderer."""
    html = MarkdownIt("commonmark").enable("table").render(body)
    hrefs = re.findall(r'<a href="([^"]*)"', html)
    html = re.sub(r"<pre>.*?</pre>|<code>.*?</code>", " ", html, flags=re.S)
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", html)), [htmllib.unescape(h) for h in hrefs]


def posted_body(tmp_path, fake, env, extra: str) -> str:
    assert post(artifact(tmp_path, body=BODY + extra), fake, env).status == "created"
    [posted] = fake.comments_by(BOT)
    return posted["body"]


@pytest.mark.parametrize("mention", ["@maintainer", "&#64;maintainer", "&#064;maintainer", "&#x40;maintainer",
                                     "&commat;org/team", "%40maintainer", "\uff20maintainer", "\ufe6bmaintainer",
                                     "owner/repo@0123abcd"])
def test_mentions_in_every_encoding_are_neutralised(tmp_path, fake, env, mention):
    text, _ = rendered_outside_code(posted_body(tmp_path, fake, env, f"cc {mention} please\n"))
    assert not re.search(r"(?:@|%40|\uff20|\ufe6b)[A-Za-z0-9_]", text), text


@pytest.mark.parametrize("reference", ["#12", "owner/repo#12", "&#35;12", "&#x23;12", "&num;12", "%2312",
                                       "\uff0312", "GH-12", r"\#12"])
def test_issue_references_in_every_encoding_are_neutralised(tmp_path, fake, env, reference):
    text, _ = rendered_outside_code(posted_body(tmp_path, fake, env, f"see {reference}\n"))
    assert not re.search(r"(?:#|%23|\uff03)[0-9]|GH-[0-9]", text), text


@pytest.mark.parametrize("link", ["[click](https://evil.example/x)", "![img](https://evil.example/p.png)",
                                  "<https://evil.example>", '<a href="https://evil.example">x</a>',
                                  "https://github.com/octo/adapters/issues/1", "www.evil.example",
                                  f"[AG205]({DOCS_URL}.evil.example/)"])
def test_links_other_than_the_rule_docs_are_neutralised(tmp_path, fake, env, link):
    body = posted_body(tmp_path, fake, env, f"{RULE_LINK} and {link}\n")
    text, hrefs = rendered_outside_code(body)
    assert hrefs == [f"{DOCS_URL}#ag205-missing-dropout"]
    assert not re.search(r"https?://|www\.", text), text
    assert "<a " not in body and "<https" not in body


def test_nothing_inside_a_code_fence_is_changed(tmp_path, fake, env):
    # A suggested JSON value with a raw U+2028 and things that would be neutralised outside a fence.
    block = '````suggestion\n    "note": "@owner #12 https://x.example \u2028 <b>",\n```\n````\n'
    body = posted_body(tmp_path, fake, env, "@outside\n" + block + "~~~\n@tilde &#64;x\n~~~\n")
    assert block in body and "~~~\n@tilde &#64;x\n~~~\n" in body
    assert "@outside" not in body


@pytest.mark.parametrize("opener", ["```not`a fence", "    ```", "> ```"])
def test_a_line_commonmark_does_not_read_as_a_fence_opens_none(tmp_path, fake, env, opener):
    body = posted_body(tmp_path, fake, env, f"{opener}\n@maintainer\n```\n")
    text, _ = rendered_outside_code(body)
    assert "@maintainer" not in body
    assert not re.search(r"@[A-Za-z]", text)


def test_html_is_escaped_outside_fences(tmp_path, fake, env):
    body = posted_body(tmp_path, fake, env, "<div>\n\n```\n@x\n```\n</div>\n<img src=x onerror=alert(1)>\n")
    assert "<div>" not in body and "<img" not in body and body.startswith(COMMENT_MARKER + "\n")


def test_the_length_is_checked_after_neutralising(tmp_path, fake, env):
    # Under the limit as written, over it once every "@a" gains a word joiner.
    padding = "@a " * ((COMMENT_LIMIT - len(BODY)) // 3)
    assert len(BODY + padding) <= COMMENT_LIMIT
    outcome = post(artifact(tmp_path, body=BODY + padding), fake, env)
    assert outcome.status == "failed" and "once neutralised" in outcome.message
    assert fake.writes() == []


def test_a_comment_adapter_guard_rendered_is_posted_unchanged(tmp_path, fake, env):
    hostile = "adapters/@octocat #12 <b>/adapter_config.json"
    results = [fixable_result(), FileResult(hostile, [finding(path=hostile)])]
    body = comment_body(results, scope="touched by this pull request", head_sha=fake.head_sha,
                        notes=["x.json: see https://example.com and @someone"])
    assert posted_body(tmp_path, fake, env, "")  # warm up: a body of our own kind is accepted
    fake.comments.clear()
    assert post(artifact(tmp_path, body=body), fake, env).status == "created"
    assert fake.comments_by(BOT)[0]["body"] == body


def test_a_closed_pr_is_refused(tmp_path, fake, env):
    fake.pull.state = "closed"
    outcome = post(artifact(tmp_path), fake, env)
    assert outcome.status == "failed" and "is closed" in outcome.message
    assert fake.writes() == []


def test_a_pr_from_another_head_repository_is_refused(tmp_path, fake, env):
    # The run tested octo/adapters at this SHA; the PR the artifact names comes from elsewhere.
    fake.pull.head_repo = "mallory/adapters"
    outcome = post(artifact(tmp_path), fake, env)
    assert outcome.status == "failed" and "comes from mallory/adapters" in outcome.message
    assert fake.writes() == []


def test_no_artifact_is_not_an_error(tmp_path, fake, env, capsys):
    # A same-repository PR's run comments by itself and uploads nothing.
    assert main([str(tmp_path / "never-downloaded")], env=env) == 0
    assert "nothing to post" in capsys.readouterr().err
    assert fake.requests == []


def test_half_an_artifact_is_refused(tmp_path, fake, env):
    directory = artifact(tmp_path)
    os.remove(directory / "comment.md")
    outcome = post(directory, fake, env)
    assert outcome.status == "failed" and "comment.md is missing" in outcome.message


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_a_fence_closed_by_a_carriage_return_line_is_closed_for_us_too(tmp_path, fake, env, ending):
    # CommonMark ends lines at \r too: "```\r@user" closes the fence, then pings, unless we read it the same way.
    body = posted_body(tmp_path, fake, env, f"```{ending}code{ending}```{ending}@maintainer{ending}")
    text, _ = rendered_outside_code(body)
    assert not re.search(r"@[A-Za-z]", text), text
    assert f"```{ending}code{ending}```" in body


def test_a_link_reference_definition_links_nothing(tmp_path, fake, env):
    body = posted_body(tmp_path, fake, env, "see [here]\n\n[here]: https://evil.example\n")
    _, hrefs = rendered_outside_code(body)
    assert hrefs == []
