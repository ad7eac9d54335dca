"""A pull request's life, scripted: the Action's entry point and the fork poster against a
local GitHub API, with real PyGithub over HTTP, a real git repository behind the PR, and
the real engine on the checkout.

open PR -> push that moves lines -> push that fixes one finding -> fork PR -> re-run.
After each step: exactly one sticky comment, at most one live review, every live
suggestion on the head's lines, and applying all of them gives, byte for byte, the file
that ``adapter-guard --fix`` writes. Run with a GITHUB_TOKEN-style identity and with a
GitHub App's (both are installation tokens: GET /user answers 403).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from github import Auth, Github

from adapter_guard.cli import main as cli_main
from adapter_guard.github import action
from adapter_guard.github.comment import SUGGESTION_MARKER
from adapter_guard.github.post_artifact import post_artifact
from adapter_guard.reporters.markdown import COMMENT_MARKER

from fake_github import FakeGitHub, Identity, Pull, GitSource, git

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "adapters" / "unsloth-partial-save"
CONFIG = "adapters/a/adapter_config.json"


# -- a repository with a PR ------------------------------------------------------------------


def init_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "dev@example.com")
    git(path, "config", "user.name", "dev")
    (path / "README.md").write_text("models\n")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "base")
    return path


def commit(repo: Path, branch: str, files: dict[str, bytes], message: str) -> str:
    git(repo, "checkout", "-q", branch)
    for name, data in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


def adapter_files(prefix: str, config: bytes | None = None) -> dict[str, bytes]:
    files = {f"{prefix}/{p.name}": p.read_bytes() for p in EXAMPLE.iterdir()}
    if config is not None:
        files[f"{prefix}/adapter_config.json"] = config
    return files


def example_config() -> str:
    return (EXAMPLE / "adapter_config.json").read_text()


def fixed_by_the_cli(repo: Path, adapter_dir: str, tmp_path: Path) -> bytes:
    """What ``adapter-guard --fix`` writes for the checked-out adapter (the oracle for suggestions)."""
    copy = tmp_path / f"fix-{len(list(tmp_path.glob('fix-*')))}"
    shutil.copytree(repo / adapter_dir, copy)
    cli_main(["--fix", "--fail-on", "never", str(copy)])
    return (copy / "adapter_config.json").read_bytes()


def apply_suggestions(text: bytes, comments: list[dict]) -> bytes:
    """Apply every suggestion as GitHub's "Commit suggestion" does: replace lines start..line with the block."""
    lines = text.decode("utf-8").split("\n")
    for comment in sorted(comments, key=lambda c: c["line"], reverse=True):
        body_lines = comment["body"].split("\n")
        opening = next(i for i, line in enumerate(body_lines) if re.fullmatch(r"`{3,}suggestion", line))
        ticks = body_lines[opening][: body_lines[opening].index("s")]
        closing = body_lines.index(ticks, opening + 1)
        start = comment.get("start_line") or comment["line"]
        lines[start - 1 : comment["line"]] = body_lines[opening + 1 : closing]
    return "\n".join(lines).encode("utf-8")


# -- running the Action and the poster -------------------------------------------------------


def client(fake: FakeGitHub, token: str) -> Github:
    return Github(base_url=fake.api_url, auth=Auth.Token(token), seconds_between_requests=0, seconds_between_writes=0)


def run_action(fake: FakeGitHub, repo: Path, pull: Pull, token: str, tmp_path: Path, monkeypatch, capsys,
               *, checkout: str | None = None, **extra_env: str) -> tuple[int, str, Path]:
    """One pull_request run: check out the head (or ``checkout``), run the Action's entry point."""
    head = pull.current_head()
    git(repo, "checkout", "-q", "--detach", checkout or head)
    run_dir = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    run_dir.mkdir()
    event = run_dir / "event.json"
    event.write_text(json.dumps({"number": pull.number, "pull_request": {
        "number": pull.number, "head": {"sha": head}}}))
    (run_dir / "output").touch()
    env = {
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": f"{fake.owner}/{fake.repo}",
        "GITHUB_API_URL": fake.api_url,
        "GITHUB_TOKEN": token,
        "GITHUB_WORKSPACE": str(repo),
        "GITHUB_OUTPUT": str(run_dir / "output"),
        "GITHUB_STEP_SUMMARY": str(run_dir / "summary.md"),
        "RUNNER_TEMP": str(run_dir),
        "ADAPTER_GUARD_PATHS": ".",
        **extra_env,
    }
    monkeypatch.chdir(repo)
    capsys.readouterr()
    code = action.run(env, client=client(fake, token))
    return code, capsys.readouterr().out, run_dir


def run_poster(fake: FakeGitHub, pull: Pull, token: str, artifact: Path, tmp_path: Path):
    event = tmp_path / "workflow_run.json"
    event.write_text(json.dumps({"action": "completed", "workflow_run": {
        "event": "pull_request", "head_sha": pull.current_head(),
        "head_repository": {"full_name": pull.head_repo}}}))
    env = {"GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": f"{fake.owner}/{fake.repo}",
           "GITHUB_API_URL": fake.api_url, "GITHUB_TOKEN": token}
    return post_artifact(artifact, env=env, client=client(fake, token))


def assert_pr_state(fake: FakeGitHub, pull: Pull, login: str, repo: Path, tmp_path: Path, adapter_dir: str,
                    *, reviewed: bool = True):
    """One sticky comment, at most one live review, suggestions that rebuild the fixed file.

    ``reviewed=False``: a fork's PR, which gets no review at all (its suggestions are annotations).
    """
    sticky = [c for c in fake.comments_by(login, pull.number) if c["body"].startswith(COMMENT_MARKER)]
    assert len(sticky) == 1
    assert len(pull.comments) == 1  # nobody else commented: nothing but the one sticky comment
    live = fake.live_suggestions(login, pull.number)
    assert len({c["pull_request_review_id"] for c in live}) <= 1
    path = f"{adapter_dir}/adapter_config.json"
    head_text = git(repo, "show", f"{pull.current_head()}:{path}").encode()
    head_lines = head_text.decode().split("\n")
    for c in live:
        assert c["path"] == path and c["commit_id"] == pull.current_head()
        assert 1 <= (c.get("start_line") or c["line"]) <= c["line"] <= len(head_lines)
    if not reviewed:
        assert live == []
        return sticky[0], live
    git(repo, "checkout", "-q", "--detach", pull.current_head())
    assert apply_suggestions(head_text, live) == fixed_by_the_cli(repo, adapter_dir, tmp_path)
    return sticky[0], live


IDENTITIES = {
    "github-token": "github-actions[bot]",
    "app-token": "adapter-guard-app[bot]",
}


@pytest.mark.parametrize("kind", IDENTITIES)
def test_a_pull_requests_life(tmp_path, monkeypatch, capsys, kind):
    login = IDENTITIES[kind]
    repo = init_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "feature")
    original = example_config()
    commit(repo, "feature", adapter_files("adapters/a"), "add an adapter")

    with FakeGitHub(login=login, token=f"ghs_{kind.replace('-', '')}0123456789SECRET") as fake:
        pull = fake.add_pull(Pull(7, head_repo="octo/adapters", git=GitSource(repo, "main", "feature")))

        # 1. The PR opens: findings, a sticky comment, one review with every suggestion.
        code, out, _ = run_action(fake, repo, pull, fake.token, tmp_path, monkeypatch, capsys)
        assert code == 1 and "::error file=adapters/a/adapter_config.json" in out
        sticky, live = assert_pr_state(fake, pull, login, repo, tmp_path, "adapters/a")
        assert len(live) == 2 and len(pull.reviews) == 1

        # 2. A push moves every line down by one: the old suggestions go outdated and are
        #    withdrawn; one new review carries the suggestions on the new lines.
        moved = original.replace("{\n", '{\n    "author": "someone",\n', 1)
        commit(repo, "feature", {CONFIG: moved.encode()}, "move lines")
        run_action(fake, repo, pull, fake.token, tmp_path, monkeypatch, capsys)
        _, live = assert_pr_state(fake, pull, login, repo, tmp_path, "adapters/a")
        assert len(live) == 2 and len(pull.reviews) == 2
        assert sorted(c["line"] for c in live) == [18, 47]
        withdrawn = pull.review_comments[:2]
        assert all(c["node_id"] in fake.minimized and "```suggestion" not in c["body"] for c in withdrawn)

        # 3. A push fixes one finding by hand (num_layers): one suggestion is left.
        fixed_one = moved.replace('"author": "someone",\n', '"author": "someone",\n    "num_layers": 2,\n', 1)
        commit(repo, "feature", {CONFIG: fixed_one.encode()}, "set num_layers")
        code, out, _ = run_action(fake, repo, pull, fake.token, tmp_path, monkeypatch, capsys)
        sticky, live = assert_pr_state(fake, pull, login, repo, tmp_path, "adapters/a")
        assert len(live) == 1 and "AG301" not in sticky["body"] and "AG205" in sticky["body"]

        # 4. A fork's PR: its token is read-only. The run saves the comment and annotates the
        #    suggestions; the workflow_run poster, holding the base repository's token, posts it.
        git(repo, "checkout", "-q", "main")
        git(repo, "checkout", "-q", "-b", "fork-feature")
        commit(repo, "fork-feature", adapter_files("adapters/b"), "a fork adds an adapter")
        fork = fake.add_pull(Pull(8, head_repo="forker/adapters", git=GitSource(repo, "main", "fork-feature")))
        fake.identities["ghs_forkreadonly0123456789"] = Identity("github-actions[bot]", refuse_writes=403)
        code, out, run_dir = run_action(fake, repo, fork, "ghs_forkreadonly0123456789", tmp_path, monkeypatch, capsys)
        assert code == 1 and fork.comments == [] and fork.reviews == []
        assert "title=adapter-guard suggestion" in out  # the review's stand-in on a fork
        artifact = run_dir / "adapter-guard-comment"
        assert run_poster(fake, fork, fake.token, artifact, tmp_path).status == "created"
        assert_pr_state(fake, fork, login, repo, tmp_path, "adapters/b", reviewed=False)
        assert fork.reviews == []

        # 5. Re-runs change nothing: same comment, no new review, no write at all.
        writes = len(fake.writes())
        run_action(fake, repo, pull, fake.token, tmp_path, monkeypatch, capsys)
        assert run_poster(fake, fork, fake.token, artifact, tmp_path).status == "unchanged"
        assert len(fake.writes()) == writes
        assert_pr_state(fake, pull, login, repo, tmp_path, "adapters/a")
        assert_pr_state(fake, fork, login, repo, tmp_path, "adapters/b", reviewed=False)
        assert len(pull.reviews) == 3


def test_a_personal_token_is_known_by_get_user(tmp_path, monkeypatch, capsys):
    repo = init_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "feature", adapter_files("adapters/a"), "add an adapter")
    with FakeGitHub(login="alice", user_endpoint=True, viewer_endpoint=False, token="ghp_alice0123456789") as fake:
        pull = fake.add_pull(Pull(7, head_repo="octo/adapters", git=GitSource(repo, "main", "feature")))
        for _ in range(2):
            run_action(fake, repo, pull, fake.token, tmp_path, monkeypatch, capsys)
        assert_pr_state(fake, pull, "alice", repo, tmp_path, "adapters/a")
        assert ("POST", "/api/graphql") not in fake.requests


def test_an_app_whose_token_cannot_ask_who_it_is_uses_its_slug(tmp_path, monkeypatch, capsys):
    repo = init_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "feature", adapter_files("adapters/a"), "add an adapter")
    with FakeGitHub(login="my-app[bot]", viewer_endpoint=False) as fake:
        pull = fake.add_pull(Pull(7, head_repo="octo/adapters", git=GitSource(repo, "main", "feature")))
        for _ in range(2):
            run_action(fake, repo, pull, fake.token, tmp_path, monkeypatch, capsys, ADAPTER_GUARD_APP_SLUG="my-app")
        assert_pr_state(fake, pull, "my-app[bot]", repo, tmp_path, "adapters/a")
        assert len(pull.reviews) == 1


# -- the default checkout: a merge commit ------------------------------------------------------


def merge_scenario(tmp_path: Path) -> tuple[Path, str]:
    """The PR edits lines next to both fixes; main meanwhile inserts a line at the top of the same file."""
    repo = init_repo(tmp_path / "repo")
    original = example_config()
    commit(repo, "main", adapter_files("adapters/a"), "an adapter on main")
    git(repo, "checkout", "-q", "-b", "feature")
    edited = original.replace('"lr_schedule": null', '"lr_schedule": "cosine"').replace(
        '    "scale": 2.0,\n    "dropout"', '    "scale": 2.00,\n    "dropout"')
    assert edited.count("\n") == original.count("\n") and edited != original
    commit(repo, "feature", {CONFIG: edited.encode()}, "tune")
    base_moved = original.replace("{\n", '{\n    "author": "someone",\n', 1)
    commit(repo, "main", {CONFIG: base_moved.encode()}, "main moves the lines")
    git(repo, "checkout", "-q", "--detach", "feature")
    git(repo, "merge", "-q", "--no-edit", "main")  # what actions/checkout checks out for a pull_request
    merge = git(repo, "rev-parse", "HEAD").strip()
    return repo, merge


def test_a_merge_commit_checkout_gets_no_suggestion_on_the_mismatched_file(tmp_path, monkeypatch, capsys):
    repo, merge = merge_scenario(tmp_path)
    with FakeGitHub() as fake:
        pull = fake.add_pull(Pull(7, head_repo="octo/adapters", git=GitSource(repo, "main", "feature")))
        assert git(repo, "show", f"{merge}:{CONFIG}") != git(repo, "show", f"feature:{CONFIG}")
        code, out, _ = run_action(fake, repo, pull, fake.token, tmp_path, monkeypatch, capsys, checkout=merge)
        assert code == 1
        assert pull.reviews == [] and pull.review_comments == []
        [sticky] = fake.comments_by(fake.login)
        assert "no review suggestions, the checked-out file is not the pull request head" in sticky["body"]


def test_the_same_pr_checked_out_at_its_head_gets_its_suggestions(tmp_path, monkeypatch, capsys):
    # The control for the test above: same PR, head checkout, the suggestions are posted and rebuild the fix.
    repo, _ = merge_scenario(tmp_path)
    with FakeGitHub() as fake:
        pull = fake.add_pull(Pull(7, head_repo="octo/adapters", git=GitSource(repo, "main", "feature")))
        run_action(fake, repo, pull, fake.token, tmp_path, monkeypatch, capsys)
        _, live = assert_pr_state(fake, pull, fake.login, repo, tmp_path, "adapters/a")
        assert len(live) == 2


def test_a_push_during_the_run_leaves_the_review_alone(tmp_path, monkeypatch, capsys):
    repo = init_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "feature")
    first = commit(repo, "feature", adapter_files("adapters/a"), "add an adapter")
    with FakeGitHub() as fake:
        pull = fake.add_pull(Pull(7, head_repo="octo/adapters", git=GitSource(repo, "main", "feature")))
        list_files = pull.git.files

        def files_then_push():
            out = list_files()
            if git(repo, "rev-parse", "feature").strip() == first:  # a push lands right after the first listing
                pushed = git(repo, "commit-tree", f"{first}^{{tree}}", "-p", first, "-m", "push").strip()
                git(repo, "update-ref", "refs/heads/feature", pushed)
            return out

        pull.git.files = files_then_push
        code, _, _ = run_action(fake, repo, pull, fake.token, tmp_path, monkeypatch, capsys)
        assert code == 1 and pull.current_head() != first
        assert pull.reviews == [] and len(fake.comments_by(fake.login)) == 1


def test_an_outdated_suggestion_with_a_reply_is_left_to_the_humans(tmp_path, monkeypatch, capsys):
    repo = init_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "feature", adapter_files("adapters/a"), "add an adapter")
    with FakeGitHub() as fake:
        pull = fake.add_pull(Pull(7, head_repo="octo/adapters", git=GitSource(repo, "main", "feature")))
        run_action(fake, repo, pull, fake.token, tmp_path, monkeypatch, capsys)
        discussed = pull.review_comments[0]
        fake.add_review_comment(pull, path=discussed["path"], line=discussed["line"], body="why 2.0?",
                                user={"login": "alice"}, in_reply_to_id=discussed["id"])
        moved = example_config().replace("{\n", '{\n    "author": "someone",\n', 1)
        commit(repo, "feature", {CONFIG: moved.encode()}, "move lines")
        run_action(fake, repo, pull, fake.token, tmp_path, monkeypatch, capsys)
        assert discussed["body"].startswith(SUGGESTION_MARKER)  # untouched
        assert discussed["node_id"] not in fake.minimized
        others = [c for c in pull.review_comments[:2] if c is not discussed]
        assert all(c["node_id"] in fake.minimized and SUGGESTION_MARKER not in c["body"] for c in others)
