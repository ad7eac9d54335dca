"""The sticky PR comment and review suggestions, over real HTTP with the real PyGithub client.

Each test talks to tests/fake_github.py, a REST server on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from github import Auth, Github

from adapter_guard.findings import FileResult
from adapter_guard.github.comment import SUGGESTION_MARKER, changed_adapter_configs, redacted_logs, run_comment
from adapter_guard.reporters.markdown import COMMENT_MARKER

from fake_github import BOT, FakeGitHub
from github_results import CONFIG_WITHOUT_DROPOUT, clean_result, finding, fixable_result, git_blob_sha, new_file_patch

CONFIG = "adapters/a/adapter_config.json"


@pytest.fixture
def fake():
    files = [{"filename": CONFIG, "status": "added", "patch": new_file_patch(CONFIG_WITHOUT_DROPOUT),
              "sha": git_blob_sha(CONFIG_WITHOUT_DROPOUT)}]
    with FakeGitHub(files=files) as server:
        yield server


@pytest.fixture
def env(tmp_path, monkeypatch, fake):
    """What a runner sets for a pull_request job; the working directory is the checkout."""
    workspace = tmp_path / "work"
    (workspace / CONFIG).parent.mkdir(parents=True)
    (workspace / CONFIG).write_text(CONFIG_WITHOUT_DROPOUT)  # the checkout holds the PR head's file
    monkeypatch.chdir(workspace)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": fake.number,
                                 "pull_request": {"number": fake.number, "head": {"sha": fake.head_sha}}}))
    (tmp_path / "output").touch()
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": f"{fake.owner}/{fake.repo}",
        "GITHUB_API_URL": fake.api_url,
        "GITHUB_TOKEN": fake.token,
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
    }


def client(fake: FakeGitHub, **options) -> Github:
    return Github(base_url=fake.api_url, auth=Auth.Token(fake.token),
                  seconds_between_requests=0, seconds_between_writes=0, **options)


def comment(results, fake, env, **options):
    return run_comment(results, env=env, client=client(fake), **options)


def outputs(env) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT (name<<delimiter blocks)."""
    lines = Path(env["GITHUB_OUTPUT"]).read_text().splitlines()
    values, i = {}, 0
    while i < len(lines):
        name, delimiter = lines[i].split("<<", 1)
        end = lines.index(delimiter, i + 1)
        values[name] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return values


# -- the one sticky comment ---------------------------------------------------------


def test_the_first_run_creates_the_comment(fake, env):
    outcome = comment([fixable_result()], fake, env)
    assert outcome.status == "created"
    [posted] = fake.comments_by(BOT)
    assert posted["body"].startswith(COMMENT_MARKER)
    assert outcome.comment_url == posted["html_url"]
    assert outputs(env)["comment-url"] == posted["html_url"]


def test_the_second_run_updates_the_same_comment(fake, env):
    comment([fixable_result()], fake, env)
    [first] = fake.comments_by(BOT)
    second_results = [FileResult(CONFIG, [finding(message="lora_parameters.dropout is still missing")])]
    outcome = comment(second_results, fake, env)
    assert outcome.status == "updated"
    assert fake.comments_by(BOT) == [first]
    assert "still missing" in first["body"]
    created = [path for method, path in fake.writes() if method == "POST" and path.endswith("/issues/7/comments")]
    assert len(created) == 1


def test_a_marker_on_page_three_is_found(fake, env):
    for i in range(70):
        fake.add_comment(f"comment {i}", "someone")
    ours = fake.add_comment(f"{COMMENT_MARKER}\nold report", BOT)
    outcome = comment([fixable_result()], fake, env)
    assert outcome.status == "updated"
    assert any("page=3" in path for _, path in fake.requests)
    assert len(fake.comments_by(BOT)) == 1
    assert "old report" not in ours["body"]


def test_a_look_alike_comment_by_another_user_is_left_alone(fake, env):
    look_alike = fake.add_comment(f"{COMMENT_MARKER}\nI look just like adapter-guard", "other-bot[bot]")
    outcome = comment([fixable_result()], fake, env)
    assert outcome.status == "created"
    assert look_alike["body"] == f"{COMMENT_MARKER}\nI look just like adapter-guard"
    assert not any(m == "PATCH" and path.endswith(str(look_alike["id"])) for m, path in fake.requests)


def test_the_author_comes_from_the_token_when_it_can_read_its_user(fake, env):
    # A personal access token (not an Actions ghs_ token) can read GET /user.
    fake.token, fake.user_endpoint, fake.login = "ghp_personal0123456789", True, "alice"
    env["GITHUB_TOKEN"] = fake.token
    fake.add_comment(f"{COMMENT_MARKER}\nby the Actions bot, not by alice", BOT)
    assert comment([fixable_result()], fake, env).status == "created"
    assert comment([fixable_result()], fake, env).status in ("unchanged", "updated")
    assert len(fake.comments_by("alice")) == 1


def test_a_clean_pr_updates_the_comment_to_say_so(fake, env):
    comment([fixable_result()], fake, env)
    outcome = comment([clean_result()], fake, env)
    assert outcome.status == "updated"
    [posted] = fake.comments_by(BOT)
    assert "✅ No problems in 1 adapter config touched by this pull request." in posted["body"]
    assert "| Code |" not in posted["body"]


def test_a_clean_pr_without_an_earlier_comment_posts_nothing(fake, env):
    outcome = comment([clean_result()], fake, env)
    assert outcome.status == "clean"
    assert fake.writes() == []


def test_a_hostile_file_name_is_escaped_in_the_posted_comment(fake, env):
    hostile = "adapters/<img src=x>`@octocat`|x/adapter_config.json"
    comment([FileResult(hostile, [finding(path=hostile)])], fake, env)
    [posted] = fake.comments_by(BOT)
    assert "<img" not in posted["body"]
    assert "@octocat" not in posted["body"]
    assert r"&lt;img src=x&gt;\`@" + "\u2060" + r"octocat\`\|x/adapter\_config.json" in posted["body"]


def test_all_paths_changes_the_wording_of_the_scope(fake, env):
    comment([fixable_result()], fake, env, all_paths=True)
    assert "under the checked paths" in fake.comments_by(BOT)[0]["body"]


# -- review suggestions ----------------------------------------------------------------


def test_review_suggestions_go_only_to_lines_in_the_diff(fake, env):
    outside = "adapters/b/adapter_config.json"
    # The PR touches only num_layers in b (line 7); the fix is on line 5, outside that hunk.
    fake.files.append({"filename": outside, "status": "modified",
                       "patch": '@@ -6,3 +6,3 @@\n     },\n-    "num_layers": 2\n+    "num_layers": 4\n }'})
    outcome = comment([fixable_result(), fixable_result(outside)], fake, env)
    assert outcome.review_comments == 1
    [review] = fake.reviews
    [suggestion] = review["comments"]
    assert (suggestion["path"], suggestion["line"], suggestion["side"]) == (CONFIG, 5, "RIGHT")
    assert "```suggestion\n        \"scale\": 20.0,\n        \"dropout\": 0.0\n```" in suggestion["body"]
    assert review["commit_id"] == fake.head_sha and review["event"] == "COMMENT"
    # The change outside the diff is still offered, as a diff block in the comment.
    assert "Suggested change for adapters/b/adapter\\_config.json" in fake.comments_by(BOT)[0]["body"]


def test_suggestions_already_on_the_pr_are_not_posted_again(fake, env):
    comment([fixable_result()], fake, env)
    outcome = comment([fixable_result()], fake, env)
    assert outcome.review_comments == 0
    assert len(fake.reviews) == 1
    assert SUGGESTION_MARKER in fake.review_comments[0]["body"]


def test_a_file_not_in_the_pr_gets_no_review(fake, env):
    outcome = comment([fixable_result("adapters/untouched/adapter_config.json")], fake, env)
    assert outcome.status == "created" and outcome.review_comments == 0
    assert fake.reviews == []


# -- forks, failures, secrets ---------------------------------------------------------


def test_a_403_falls_back_to_files_and_outputs(fake, env):
    fake.refuse_writes = 403
    outcome = comment([fixable_result()], fake, env)
    assert outcome.status == "saved" and outcome.ok
    saved = Path(env["RUNNER_TEMP"]) / "adapter-guard-comment"
    assert (saved / "pr-number").read_text() == f"{fake.number}\n"
    assert (saved / "comment.md").read_text().startswith(COMMENT_MARKER)
    assert outputs(env) == {
        "comment-url": "",
        "comment-artifact-dir": str(saved),
        "comment-body-file": str(saved / "comment.md"),
        "pr-number": str(fake.number),
    }
    assert fake.comments == []


def test_a_404_falls_back_too(fake, env, tmp_path):
    fake.refuse_writes = 404
    outcome = comment([fixable_result()], fake, env, out_dir=tmp_path / "artifact")
    assert outcome.status == "saved"
    assert (tmp_path / "artifact" / "comment.md").is_file()


def test_a_403_that_cannot_be_saved_is_reported(fake, env, tmp_path):
    fake.refuse_writes = 403
    (tmp_path / "a-file").touch()
    outcome = comment([fixable_result()], fake, env, out_dir=tmp_path / "a-file" / "artifact")
    assert outcome.status == "failed"
    assert "could not be saved" in outcome.message


def test_a_rate_limit_403_is_an_error_not_a_fork(fake, env):
    fake.refuse_writes, fake.refusal = 403, "API rate limit exceeded for installation"
    outcome = run_comment([fixable_result()], env=env, client=client(fake, retry=None))
    assert outcome.status == "failed" and "rate limit" in outcome.message
    assert not (Path(env["RUNNER_TEMP"]) / "adapter-guard-comment").exists()


def test_another_api_error_is_reported_not_raised(fake, env):
    fake.refuse_writes = 500
    outcome = run_comment([fixable_result()], env=env, client=client(fake, retry=None))
    assert outcome.status == "failed" and not outcome.ok
    assert "could not post the PR comment: HTTP 500: Resource not accessible" in outcome.message


def test_the_token_never_appears_in_output_logs_or_files(fake, env, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="github")  # PyGithub logs each request at DEBUG
    fake.refuse_writes = 500  # the error body echoes the Authorization header
    failed = run_comment([fixable_result()], env=env, client=client(fake, retry=None))
    fake.refuse_writes = 403
    saved = comment([fixable_result()], fake, env)
    captured = capsys.readouterr()
    assert "***" in failed.message  # the echoed token was there, and was redacted
    everything = [captured.out, captured.err, caplog.text, failed.message, saved.message,
                  Path(env["GITHUB_OUTPUT"]).read_text()]
    everything += [p.read_text() for p in (Path(env["RUNNER_TEMP"]) / "adapter-guard-comment").iterdir()]
    assert not [text for text in everything if fake.token in text]


def test_pygithub_log_records_are_redacted_while_we_talk_to_the_api(caplog):
    caplog.set_level(logging.DEBUG, logger="github")
    with redacted_logs("s3cret"):
        logging.getLogger("github.Requester").debug("GET /x ==> 403 %s", '{"message": "bad token s3cret"}')
    logging.getLogger("github.Requester").debug("after: %s", "s3cret")
    assert [r.getMessage() for r in caplog.records] == ['GET /x ==> 403 {"message": "bad token ***"}', "after: s3cret"]


def test_an_app_token_posts_under_the_author_named_in_the_environment(fake, env):
    fake.login = "my-app[bot]"
    fake.add_comment(f"{COMMENT_MARKER}\nolder", "my-app[bot]")
    outcome = comment([fixable_result()], fake, {**env, "ADAPTER_GUARD_COMMENT_AUTHOR": "my-app[bot]"})
    assert outcome.status == "updated"
    assert len(fake.comments) == 1


def test_a_push_event_is_skipped_without_calling_the_api(fake, env, tmp_path):
    (tmp_path / "push.json").write_text(json.dumps({"ref": "refs/heads/main"}))
    outcome = comment([fixable_result()], fake, {**env, "GITHUB_EVENT_PATH": str(tmp_path / "push.json")})
    assert outcome.status == "skipped"
    assert fake.requests == []


def test_a_missing_token_is_a_clear_message(fake, env, capsys):
    outcome = run_comment([fixable_result()], env={**env, "GITHUB_TOKEN": ""})
    assert outcome.status == "failed"
    assert "GITHUB_TOKEN is not set" in capsys.readouterr().err


def test_without_pygithub_the_comment_is_a_clear_message(fake, env, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "github", None)  # makes "import github" fail
    outcome = run_comment([fixable_result()], env=env)
    assert outcome.status == "failed"
    assert "pip install 'adapter-guard[github]'" in capsys.readouterr().err
    assert fake.requests == []


def test_the_client_is_built_from_github_api_url(fake, env):
    # No client passed: GITHUB_API_URL (an Enterprise-style /api/v3 prefix) and GITHUB_TOKEN are used.
    outcome = run_comment([fixable_result()], env=env)
    assert outcome.status == "created"
    # REST under /api/v3, GraphQL (who the token is) at /api/graphql, as GitHub Enterprise lays them out.
    assert all(path.startswith("/api/v3/") or path == "/api/graphql" for _, path in fake.requests)
    assert any(path.startswith("/api/v3/") for _, path in fake.requests)


# -- which adapters the PR touches ---------------------------------------------------


def make_adapter(root: Path, name: str) -> Path:
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "adapter_config.json").write_text("{}")
    return Path(name) / "adapter_config.json"


def test_changed_adapter_configs_reads_every_page_of_the_pr_files(fake, env):
    workspace = Path(env["GITHUB_WORKSPACE"])
    a, b, c = (make_adapter(workspace, f"adapters/{n}") for n in "abc")
    fake.files = [{"filename": f"docs/page{i}.md", "status": "added"} for i in range(45)]
    fake.files += [{"filename": "adapters/a/adapters.safetensors", "status": "modified"},
                   {"filename": "adapters/c/README.md", "status": "renamed", "previous_filename": "adapters/c/x.md"},
                   {"filename": "adapters/gone/adapter_config.json", "status": "removed"}]
    assert changed_adapter_configs(env, client=client(fake)) == [a, c]
    assert b not in changed_adapter_configs(env, client=client(fake))
    assert any("page=2" in path for _, path in fake.requests)


def test_changed_adapter_configs_keeps_only_those_under_the_roots(fake, env):
    workspace = Path(env["GITHUB_WORKSPACE"])
    make_adapter(workspace, "adapters/a")
    kept = make_adapter(workspace, "other/b")
    fake.files = [{"filename": "adapters/a/adapter_config.json", "status": "modified"},
                  {"filename": "other/b/adapter_config.json", "status": "modified"}]
    assert changed_adapter_configs(env, roots=[Path("other")], client=client(fake)) == [kept]


def test_changed_adapter_configs_ignores_paths_that_leave_the_checkout(fake, env, tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")  # one level above the workspace
    fake.files = [{"filename": "../adapter_config.json", "status": "modified"}]
    assert changed_adapter_configs(env, client=client(fake)) == []


def test_changed_adapter_configs_is_none_outside_a_pull_request(env, tmp_path):
    (tmp_path / "push.json").write_text("{}")
    assert changed_adapter_configs({**env, "GITHUB_EVENT_PATH": str(tmp_path / "push.json")}) is None


def test_importing_the_github_modules_does_not_import_pygithub():
    code = ("import sys, adapter_guard.github.comment, adapter_guard.github.action, adapter_guard.github.post_artifact, "
            "adapter_guard.reporters.github, adapter_guard.reporters.sarif, adapter_guard.reporters.markdown; "
            "print(sorted(m for m in sys.modules if m == 'github' or m.startswith(('github.', 'mlx'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "[]\n"


# -- who we are: asked of the API, never read off the token ---------------------------------------


def test_an_app_installation_token_is_known_by_graphql_viewer_not_by_its_prefix(fake, env):
    # An App's installation token starts with ghs_ like the Actions GITHUB_TOKEN, but is not github-actions[bot].
    fake.login = "adapter-guard-app[bot]"
    fake.add_comment(f"{COMMENT_MARKER}\nthe Actions bot's, from another workflow", BOT)
    for _ in range(2):
        comment([fixable_result()], fake, env)
    assert len(fake.comments_by("adapter-guard-app[bot]")) == 1 and len(fake.reviews) == 1
    assert fake.comments_by(BOT)[0]["body"].endswith("from another workflow")  # untouched
    assert ("POST", "/api/graphql") in fake.requests


def test_when_no_api_says_who_we_are_the_app_slug_names_the_bot(fake, env):
    fake.login, fake.viewer_endpoint = "my-app[bot]", False
    env["ADAPTER_GUARD_APP_SLUG"] = "my-app"
    for _ in range(2):
        comment([fixable_result()], fake, env)
    assert len(fake.comments_by("my-app[bot]")) == 1


# -- review hygiene ---------------------------------------------------------------------------------


def test_a_review_holds_at_most_the_cap_and_the_comment_says_how_many_were_left_out(fake, env, monkeypatch):
    from adapter_guard.github import comment as module

    monkeypatch.setattr(module, "MAX_REVIEW_COMMENTS", 1)
    result = fixable_result()  # a second change, on the file's last lines, makes two suggestions
    result.diff = result.diff.rstrip("\n") + "\n@@ -8,2 +8,3 @@\n-    \"num_layers\": 4\n+    \"num_layers\": 4,\n+    \"x\": 1\n }\n"
    assert len(module.difflines.suggestions(result.diff)) == 2
    outcome = comment([result], fake, env)
    assert outcome.review_comments == 1 and len(fake.reviews[0]["comments"]) == 1
    assert "1 more suggestion not posted as review comments" in fake.comments_by(BOT)[0]["body"]


def test_a_matching_suggestion_needs_the_same_line_not_only_the_same_text(fake, env):
    comment([fixable_result()], fake, env)
    [posted] = fake.review_comments
    posted["line"] = 4  # as if an earlier push had put the same text one line up
    comment([fixable_result()], fake, env)
    assert len(fake.reviews) == 2
    assert [c["line"] for c in fake.live_suggestions(BOT)] == [5]


def test_a_suggestion_on_a_file_that_is_not_the_heads_blob_is_not_posted(fake, env):
    fake.files[0]["sha"] = "f" * 40  # the checkout holds other bytes than the PR head (a merge commit)
    outcome = comment([fixable_result()], fake, env)
    assert outcome.status == "created" and fake.reviews == []
    assert "no review suggestions, the checked-out file is not the pull request head" in fake.comments_by(BOT)[0]["body"]


# -- which adapters: past the API's 3,000-file listing -------------------------------------------------


def test_a_pr_with_more_files_than_the_api_lists_checks_every_adapter(fake, env, capsys):
    fake.files = [{"filename": f"data/{i}.txt", "status": "added"} for i in range(5)]
    fake.pull.changed_files = 3500
    assert changed_adapter_configs(env, client=client(fake)) is None
    assert "lists 5 of the PR's 3500 changed files" in capsys.readouterr().err
