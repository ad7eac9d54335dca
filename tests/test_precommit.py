"""The real pre-commit, driving the hooks in .pre-commit-hooks.yaml through `pre-commit try-repo`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_cli import COMPLETE, without, write_adapter

ROOT = Path(__file__).resolve().parent.parent
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is required by pre-commit")


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory):
    # One hook environment for the module: pre-commit installs adapter-guard into it once.
    return tmp_path_factory.mktemp("pre-commit-home")


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def try_repo(repo, hook, home):
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook, "--all-files", "--verbose"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "models"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    # Enough adapters (config + weights each) that pre-commit splits them into several batches.
    for i in range(8):
        write_adapter(repo / f"adapter-{i}", without(COMPLETE, '"rank"'))
    git(repo, "add", "-A")
    return repo


def test_check_hook_fails_fix_hook_fixes_then_check_passes(repo, pre_commit_home):
    check = try_repo(repo, "adapter-guard", pre_commit_home)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "AG202" in check.stdout

    fix = try_repo(repo, "adapter-guard-fix", pre_commit_home)
    assert fix.returncode == 1  # pre-commit fails a hook that modified files
    assert "files were modified by this hook" in fix.stdout
    for i in range(8):
        assert '"rank": 8' in (repo / f"adapter-{i}" / "adapter_config.json").read_text()

    again = try_repo(repo, "adapter-guard", pre_commit_home)
    assert again.returncode == 0, again.stdout + again.stderr


def test_hooks_are_complete_and_agree():
    assert [h["id"] for h in HOOKS] == ["adapter-guard", "adapter-guard-fix"]
    for hook in HOOKS:
        assert hook["language"] == "python"
        assert hook["minimum_pre_commit_version"]
        assert "--force-exclude" in hook["entry"]
    assert HOOKS[0]["files"] == HOOKS[1]["files"]
    assert "--fix" in HOOKS[1]["entry"].split() and "--fix" not in HOOKS[0]["entry"].split()


@pytest.mark.parametrize(
    ("path", "matches"),
    [
        ("adapter_config.json", True),
        ("models/lora/adapter_config.json", True),
        ("models/lora/adapters.safetensors", True),
        ("models/lora/0000100_adapters.safetensors", False),  # a checkpoint, not what mlx-lm loads
        ("models/peft/adapter_model.safetensors", True),
        ("models/peft/adapter_model.bin", True),
        ("lora/adapters.npz", True),
        ("models/peft/model.safetensors", False),  # a base model's weights
        ("models/peft/adapter_model.safetensors.index.json", False),
        ("models/lora/my_adapter_config.json", False),
        ("models/lora/adapter_config.json.bak", False),
        ("config.json", False),
    ],
)
def test_files_regex(path, matches):
    assert bool(re.search(HOOKS[0]["files"], path)) is matches


def test_both_hooks_pass_a_model_repo_of_working_peft_and_mlx_vlm_adapters(written_adapters, tmp_path, pre_commit_home):
    # The adapters most model repos hold, written by the real PEFT and mlx-vlm savers:
    # the check hook passes and the fix hook changes nothing (pre-commit fails a hook that modifies files).
    repo = tmp_path / "models"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    working = {k: d for k, (fmt, d) in written_adapters.items() if k.split("/")[0] in ("peft", "vlm")}
    working.pop("peft/bin_fallback")  # a pickle: AG703 says to convert it, rightly
    for name, adapter_dir in working.items():
        shutil.copytree(adapter_dir, repo / name.replace("/", "-"))
    git(repo, "add", "-A")
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}

    for hook in ("adapter-guard", "adapter-guard-fix"):
        run = try_repo(repo, hook, pre_commit_home)
        assert run.returncode == 0, run.stdout + run.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert len(working) >= 20
