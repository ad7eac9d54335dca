"""Git repositories with LFS-tracked adapters, made by the real git and git-lfs clients.

``make_lfs_repos`` builds a source repository whose ``.lfsconfig`` points
``lfs.url`` at a :class:`lfs_server.LfsServer`, pushes it (git-lfs uploads the
objects through the stand-in's Batch API) to a local bare remote, then clones
it twice: a full checkout (git-lfs downloads every object from the stand-in)
and a pointer-only clone with ``GIT_LFS_SKIP_SMUDGE=1``, as ``actions/checkout``
leaves a repository by default.

Git runs with its own ``HOME`` (``git_env``), so the user's and the system's
git configuration play no part.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

import builders
import peft_writers


def git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITHUB_"))}
    env.pop("HF_HUB_OFFLINE", None)
    return {
        **env,
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    }


def git(env: dict[str, str], cwd: Path, *args: str, **extra_env: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env={**env, **extra_env}, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def require_git_lfs() -> None:
    if shutil.which("git-lfs") is None:
        raise AssertionError("git-lfs is not installed: `apt-get install -y git-lfs` (.ci/run does this)")


def edit_config(adapter_dir: Path, change) -> None:
    path = adapter_dir / "adapter_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    change(config)
    path.write_text(json.dumps(config, indent=4) + "\n", encoding="utf-8")


def write_adapters(root: Path) -> dict[str, Path]:
    """Real mlx-lm adapters (some with findings, one with a broken header, one large) and a real PEFT one."""
    adapters = root / "adapters"
    built = {
        "attention": builders.llama_attention_adapter(adapters / "attention").adapter_dir,
        "dora": builders.dora_adapter(adapters / "dora").adapter_dir,
        "all-layers": builders.llama_all_layers_adapter(adapters / "all-layers").adapter_dir,
    }
    # Findings that need the tensors: num_layers (AG301), a wrong rank (AG203).
    edit_config(built["dora"], lambda c: c.pop("num_layers"))
    edit_config(built["all-layers"], lambda c: c["lora_parameters"].update(rank=8))
    # The same weights twice: one LFS object, fetched once.
    copy = adapters / "attention-copy"
    shutil.copytree(built["attention"], copy)
    built["attention-copy"] = copy
    # A header the local reader refuses: a tensor past the end of the data.
    broken = adapters / "broken"
    shutil.copytree(built["attention"], broken)
    header = json.dumps({
        "model.layers.0.self_attn.q_proj.lora_a": {"dtype": "F32", "shape": [32, 4], "data_offsets": [0, 10**6]},
    }).encode()
    (broken / "adapters.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(512))
    built["broken"] = broken
    # 32 MB of weights: the header is the same few KB.
    big = adapters / "big"
    big.mkdir(parents=True)
    save_file(
        {
            "model.layers.0.self_attn.q_proj.lora_a": np.zeros((4096, 1024), np.float32),
            "model.layers.0.self_attn.q_proj.lora_b": np.zeros((1024, 4096), np.float32),
        },
        str(big / "adapters.safetensors"),
    )
    shutil.copy(built["attention"] / "adapter_config.json", big / "adapter_config.json")
    edit_config(big, lambda c: c["lora_parameters"].update(rank=1024, keys=["self_attn.q_proj"]))
    built["big"] = big
    # A PEFT adapter, written by peft's save_pretrained: adapter_model.safetensors.
    built["peft"] = peft_writers.build_sample("plain_qv", adapters / "peft").adapter_dir
    return built


@dataclass
class LfsRepos:
    env: dict[str, str]
    home: Path
    source: Path
    remote: Path
    full: Path
    pointers: Path
    adapters: list[str]  # adapter directories relative to the repository root


def make_lfs_repos(base: Path, server) -> LfsRepos:
    require_git_lfs()
    home = base / "home"
    home.mkdir()
    env = git_env(home)
    git(env, base, "config", "--global", "init.defaultBranch", "main")
    git(env, base, "config", "--global", "lfs.locksverify", "false")
    git(env, base, "lfs", "install", "--skip-repo")  # the filters, in this HOME's config

    source = base / "source"
    source.mkdir()
    git(env, source, "init", "-q")
    git(env, source, "lfs", "install", "--local")  # filters and the pre-push hook that uploads
    git(env, source, "lfs", "track", "*.safetensors")
    git(env, source, "config", "--file", ".lfsconfig", "lfs.url", server.url)
    built = write_adapters(source)
    git(env, source, "add", "-A")
    git(env, source, "commit", "-q", "-m", "adapters")

    remote = base / "remote.git"
    git(env, base, "init", "-q", "--bare", str(remote))
    git(env, source, "remote", "add", "origin", str(remote))
    git(env, source, "push", "-q", "origin", "main")

    full = base / "full"
    git(env, base, "clone", "-q", str(remote), str(full))
    pointers = base / "pointers"
    git(env, base, "clone", "-q", str(remote), str(pointers), GIT_LFS_SKIP_SMUDGE="1")
    adapters = sorted(p.relative_to(source).as_posix() for p in built.values())
    return LfsRepos(env, home, source, remote, full, pointers, adapters)
