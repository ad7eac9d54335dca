"""--smoke loads the base the lint found, by the same lookup: a base the adapter config
names outside the repository is never loaded, one inside it is."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("mlx_lm", reason="the [mlx] extra is part of the test install")

from adapter_guard.cli import main  # noqa: E402


def smoke(capsys, adapter_dir) -> tuple[int, list[dict]]:
    capsys.readouterr()
    code = main(["--smoke", "--output-format", "json", str(adapter_dir)])
    return code, json.loads(capsys.readouterr().out)


def adapter_naming(trained, repo, model: str):
    adapter_dir = trained.copy_to(repo / "adapter")
    config = trained.config
    config["model"] = model
    (adapter_dir / "adapter_config.json").write_text(json.dumps(config, indent=4), encoding="utf-8")
    return adapter_dir


def test_smoke_never_loads_a_base_named_outside_the_repository(trainer_corpus, tmp_path, monkeypatch, capsys):
    trained = trainer_corpus["lora-2-layers"]
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    adapter_dir = adapter_naming(trained, repo, str(trained.base_dir))
    code, findings = smoke(capsys, adapter_dir)
    [skipped] = [f for f in findings if f["code"] == "AG501"]
    assert "outside the repository" in skipped["message"]
    assert code == 0  # skipped is informational unless --require-smoke


def test_smoke_loads_the_base_the_config_names_inside_the_repository(trainer_corpus, tmp_path, monkeypatch, capsys):
    trained = trainer_corpus["lora-2-layers"]
    repo = tmp_path / "repo"
    shutil.copytree(trained.base_dir, repo / "models" / "base")
    monkeypatch.chdir(repo)
    adapter_dir = adapter_naming(trained, repo, "models/base")
    code = main(["--smoke", "--require-smoke", str(adapter_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "named by the adapter config's `model`" in out
