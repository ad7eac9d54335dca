"""The Action's ``autofix`` input: safe fixes committed and pushed to a same-repository PR branch.

A bare git repository on disk stands for GitHub's remote (GITHUB_SERVER_URL is a
file:// URL), and the local GitHub API serves the PR; the engine and git are real.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from github import Auth, Github

from adapter_guard.cli import main as cli_main
from adapter_guard.github import action

from fake_github import FakeGitHub, GitSource, Pull, git

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "adapters" / "unsloth-partial-save"
CONFIG = "adapters/a/adapter_config.json"


def setup(tmp_path: Path, *, config: str | None = None) -> tuple[Path, Path, str]:
    """A remote (bare) with main and a feature branch that adds an adapter; a clone checked out at its head."""
    remote = tmp_path / "server" / "octo" / "adapters"
    remote.mkdir(parents=True)
    git(remote, "init", "-q", "--bare", "-b", "main")
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(remote), str(work))
    git(work, "config", "user.email", "dev@example.com")
    git(work, "config", "user.name", "dev")
    (work / "README.md").write_text("models\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "base")
    git(work, "push", "-q", "origin", "HEAD:refs/heads/main")
    git(work, "checkout", "-q", "-b", "feature")
    shutil.copytree(EXAMPLE, work / "adapters" / "a")
    if config is not None:
        (work / CONFIG).write_text(config)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "add an adapter")
    git(work, "push", "-q", "origin", "HEAD:refs/heads/feature")
    head = git(work, "rev-parse", "HEAD").strip()
    git(work, "checkout", "-q", "--detach", head)  # as actions/checkout leaves it
    return remote, work, head


def run(tmp_path, monkeypatch, capsys, fake, work, head, *, head_repo="octo/adapters", **inputs):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"number": 7, "pull_request": {"number": 7, "head": {
        "sha": head, "ref": "feature", "repo": {"full_name": head_repo}}}}))
    (tmp_path / "output").touch()
    env = {"GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "octo/adapters", "GITHUB_API_URL": fake.api_url,
           "GITHUB_SERVER_URL": (tmp_path / "server").as_uri(), "GITHUB_TOKEN": fake.token,
           "GITHUB_WORKSPACE": str(work), "GITHUB_OUTPUT": str(tmp_path / "output"),
           "RUNNER_TEMP": str(tmp_path / "temp"), "ADAPTER_GUARD_AUTOFIX": "true", **inputs}
    monkeypatch.chdir(work)
    client = Github(base_url=fake.api_url, auth=Auth.Token(fake.token), seconds_between_requests=0,
                    seconds_between_writes=0)
    capsys.readouterr()
    code = action.run(env, client=client)
    return code, capsys.readouterr().out


def fixed_by_the_cli(tmp_path: Path, work: Path) -> bytes:
    copy = tmp_path / "oracle"
    shutil.copytree(work / "adapters" / "a", copy)
    cli_main(["--fix", "--fail-on", "never", str(copy)])
    return (copy / "adapter_config.json").read_bytes()


def test_a_same_repository_pr_gets_one_commit_with_exactly_the_fixed_file(tmp_path, monkeypatch, capsys):
    remote, work, head = setup(tmp_path)
    expected = fixed_by_the_cli(tmp_path, work)
    with FakeGitHub() as fake:
        fake.add_pull(Pull(7, head_repo="octo/adapters", git=GitSource(remote, "main", "feature")))
        code, out = run(tmp_path, monkeypatch, capsys, fake, work, head)
        pushed = git(remote, "rev-parse", "feature").strip()
        assert code == 0  # every finding was fixed
        assert pushed != head and git(remote, "rev-parse", f"{pushed}^").strip() == head
        assert git(remote, "diff", "--name-only", head, pushed).split() == [CONFIG]
        assert git(remote, "show", f"{pushed}:{CONFIG}").encode() == expected
        assert f"autofix: pushed {pushed[:12]} to feature" in out
        [sticky] = fake.comments_by(fake.login)
        assert pushed in sticky["body"] and "starts no new workflow run" in sticky["body"]
        assert fake.reviews == []  # nothing left to suggest
        assert fake.token not in out


def test_what_is_left_unfixed_still_fails_the_run(tmp_path, monkeypatch, capsys):
    # scale has no mirror and no proof: AG204 cannot be fixed; the other fixes are still pushed.
    config = (EXAMPLE / "adapter_config.json").read_text().replace('    "scale": 2.0,\n', "")
    remote, work, head = setup(tmp_path, config=config)
    with FakeGitHub() as fake:
        fake.add_pull(Pull(7, head_repo="octo/adapters", git=GitSource(remote, "main", "feature")))
        code, out = run(tmp_path, monkeypatch, capsys, fake, work, head)
        assert code == 1 and "AG204" in out
        assert git(remote, "rev-parse", "feature").strip() != head


def test_a_fork_gets_no_push(tmp_path, monkeypatch, capsys):
    remote, work, head = setup(tmp_path)
    with FakeGitHub() as fake:
        fake.add_pull(Pull(7, head_repo="forker/adapters", git=GitSource(remote, "main", "feature")))
        code, out = run(tmp_path, monkeypatch, capsys, fake, work, head, head_repo="forker/adapters")
        assert code == 1
        assert "autofix: nothing pushed: the pull request comes from a fork" in out
        assert git(remote, "rev-parse", "feature").strip() == head
        assert git(work, "status", "--porcelain") == ""  # not even the checkout was touched


def test_a_checkout_that_is_not_the_head_gets_no_push(tmp_path, monkeypatch, capsys):
    remote, work, head = setup(tmp_path)
    git(work, "checkout", "-q", "--detach", "main")
    git(work, "checkout", "-q", head, "--", "adapters")  # same files, another commit: a merge-commit stand-in
    git(work, "commit", "-qm", "merge stand-in")
    with FakeGitHub() as fake:
        fake.add_pull(Pull(7, head_repo="octo/adapters", git=GitSource(remote, "main", "feature")))
        code, out = run(tmp_path, monkeypatch, capsys, fake, work, head)
        assert code == 1 and "is not the pull request head" in out
        assert git(remote, "rev-parse", "feature").strip() == head


def test_a_branch_that_moved_is_not_overwritten(tmp_path, monkeypatch, capsys):
    remote, work, head = setup(tmp_path)
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "-b", "feature", str(remote), str(other))
    (other / "NOTES.md").write_text("a push during the run\n")
    git(other, "add", "-A")
    git(other, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "meanwhile")
    git(other, "push", "-q", "origin", "HEAD:refs/heads/feature")
    moved = git(remote, "rev-parse", "feature").strip()
    with FakeGitHub() as fake:
        fake.add_pull(Pull(7, head_repo="octo/adapters", git=GitSource(remote, "main", "feature")))
        code, out = run(tmp_path, monkeypatch, capsys, fake, work, head)
        assert code == 1 and "::error title=adapter-guard::autofix: could not push the fixes" in out
        assert git(remote, "rev-parse", "feature").strip() == moved


def test_autofix_off_pushes_nothing_and_fix_in_args_points_at_it(tmp_path, monkeypatch, capsys):
    remote, work, head = setup(tmp_path)
    with FakeGitHub() as fake:
        fake.add_pull(Pull(7, head_repo="octo/adapters", git=GitSource(remote, "main", "feature")))
        code, _ = run(tmp_path, monkeypatch, capsys, fake, work, head, ADAPTER_GUARD_AUTOFIX="false")
        assert code == 1 and git(remote, "rev-parse", "feature").strip() == head
        code, out = run(tmp_path, monkeypatch, capsys, fake, work, head, ADAPTER_GUARD_ARGS="--fix")
        assert code == 2 and "autofix: true" in out


def test_the_token_reaches_git_as_a_header_in_the_environment_not_the_command_line():
    from adapter_guard.github.autofix import _auth_env

    env = _auth_env({"GITHUB_TOKEN": "ghs_secret"}, "https://github.com/octo/adapters")
    assert env["GIT_CONFIG_KEY_0"] == "http.extraheader"
    assert env["GIT_CONFIG_VALUE_0"].startswith("AUTHORIZATION: basic ") and "ghs_secret" not in env["GIT_CONFIG_VALUE_0"]
