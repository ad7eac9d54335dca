"""The workflow_run side for fork PRs: post the saved comment, treating the artifact as untrusted."""

from __future__ import annotations

import json
import os

import pytest
from github import Auth, Github

from adapter_guard.github.post_artifact import main, post_artifact
from adapter_guard.reporters.markdown import COMMENT_LIMIT, COMMENT_MARKER

from fake_github import BOT, FakeGitHub

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
