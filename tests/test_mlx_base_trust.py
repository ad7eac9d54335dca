"""``--smoke`` and ``--gpt-oss`` never run code that came with the checked repository.

A pull request can ship its own "base model": a ``config.json`` whose
``model_file`` names a Python file beside it. mlx-lm 0.30.6 to 0.31.3 imported
that file on a plain ``load_model``; adapter-guard refuses such a base before
mlx-lm sees it, on every supported mlx-lm, and says so.
"""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("mlx_lm", reason="the [mlx] extra is part of the test install")

import builders  # noqa: E402
from adapter_guard.cli import main  # noqa: E402
from adapter_guard.mlx import reload  # noqa: E402
from adapter_guard.mlx.gpt_oss import TINY_GPT_OSS  # noqa: E402

EVIL_CODE = """\
from pathlib import Path

Path({marker!r}).write_text("the checked repository's code ran")
"""


@pytest.fixture(autouse=True)
def _run_from_tmp(tmp_path, monkeypatch):
    # Relative names resolve from the working directory first: keep it inside this test.
    monkeypatch.chdir(tmp_path)


def evil_repository(tmp_path, hook: dict) -> tuple:
    """A repository with a gpt-oss adapter whose ``model`` is a base shipping code; returns (adapter dir, marker)."""
    repo = tmp_path / "repo"
    marker = tmp_path / "marker"
    base = builders.write_base_dir(dict(TINY_GPT_OSS, **hook), repo / "base")
    (base / "evil.py").write_text(EVIL_CODE.format(marker=str(marker)), encoding="utf-8")
    model = builders.make_live_adapter(TINY_GPT_OSS, num_layers=-1)
    adapter_dir = builders.save_mlx_lm_style(
        model, repo / "adapter", num_layers=-1, lora_parameters={"rank": 4, "scale": 2.0, "dropout": 0.0}
    )
    config_path = adapter_dir / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["model"] = "../base"  # relative, as a pull request would write it
    config_path.write_text(json.dumps(config, indent=4))
    return adapter_dir, marker


def findings(capsys, *args) -> list[dict]:
    capsys.readouterr()
    main(["--output-format", "json", *map(str, args)])
    return json.loads(capsys.readouterr().out)


def test_the_evil_base_does_run_its_code_when_a_loader_trusts_it(tmp_path):
    """The marker is a real detector: mlx-lm with trust_remote_code imports evil.py."""
    from mlx_lm.utils import load_model

    adapter_dir, marker = evil_repository(tmp_path, {"model_file": "evil.py"})
    with pytest.raises(Exception):  # evil.py defines no Model: the import ran, then the load fails
        load_model(adapter_dir.parent / "base", strict=False, trust_remote_code=True)
    assert marker.exists()


@pytest.mark.parametrize("hook", [{"model_file": "evil.py"}, {"auto_map": {"AutoModelForCausalLM": "evil.Model"}}])
def test_smoke_refuses_a_base_that_ships_code_and_never_runs_it(tmp_path, capsys, hook):
    adapter_dir, marker = evil_repository(tmp_path, hook)

    found = findings(capsys, "--smoke", adapter_dir)

    assert [f["code"] for f in found] == ["AG511"]
    key = next(iter(hook))
    assert f"asks to run code it ships ({key} in config.json)" in found[0]["message"]
    assert not marker.exists()


def test_gpt_oss_refuses_a_base_that_ships_code_and_never_runs_it(tmp_path, capsys):
    adapter_dir, marker = evil_repository(tmp_path, {"model_file": "evil.py"})

    found = findings(capsys, "--gpt-oss", adapter_dir)

    assert [f["code"] for f in found] == ["AG604"]
    assert "model_file in config.json" in found[0]["message"]
    assert not marker.exists()


def test_a_base_given_with_base_model_is_refused_too(tmp_path, capsys):
    adapter_dir, marker = evil_repository(tmp_path, {"model_file": "evil.py"})

    found = findings(capsys, "--smoke", "--gpt-oss", "--base-model", adapter_dir.parent / "base", adapter_dir)

    assert sorted(f["code"] for f in found) == ["AG511", "AG604"]
    assert not marker.exists()


def test_exit_code_is_non_zero_when_the_base_is_refused(tmp_path):
    adapter_dir, marker = evil_repository(tmp_path, {"model_file": "evil.py"})

    assert main(["--smoke", str(adapter_dir)]) == 1
    assert not marker.exists()


def test_a_hook_inside_a_nested_config_is_found():
    config = {"model_type": "llava", "text_config": {"model_file": "x.py"}, "auto_map": {}}

    assert reload.code_hooks(config) == ["auto_map", "text_config.model_file"]


def test_a_plain_base_has_no_hooks():
    assert reload.code_hooks(TINY_GPT_OSS) == []


# -- the base is handed in already resolved ---------------------------------------------------------


def test_smoke_uses_the_resolved_base_it_is_given_and_not_the_configs_model(tmp_path):
    from adapter_guard.mlx.smoke import run_smoke

    adapter_dir, marker = evil_repository(tmp_path, {"model_file": "evil.py"})
    trusted = builders.write_base_dir(TINY_GPT_OSS, tmp_path / "trusted")
    config_path = adapter_dir / "adapter_config.json"

    result = run_smoke(config_path, json.loads(config_path.read_text()), base=reload.BaseModelSource(trusted, "lookup"))

    assert (result.findings, result.base.path) == ([], trusted)
    assert f"smoke: base {trusted} (lookup), seeded random weights (config.json only)" in result.notes
    assert not marker.exists()


def test_smoke_reports_why_the_lookup_found_no_base(tmp_path):
    from adapter_guard.mlx.smoke import run_smoke

    adapter_dir, _ = evil_repository(tmp_path, {"model_file": "evil.py"})
    config_path = adapter_dir / "adapter_config.json"

    result = run_smoke(config_path, {}, base=reload.NoBase("the lookup's reason"))

    assert [(f.code, f.message) for f in result.findings] == [
        ("AG501", "smoke skipped: base model not available locally: the lookup's reason")
    ]


def test_gpt_oss_uses_the_resolved_base_it_is_given(tmp_path):
    from adapter_guard.mlx.gpt_oss import gpt_oss_findings

    adapter_dir, marker = evil_repository(tmp_path, {"model_file": "evil.py"})
    trusted = builders.write_base_dir(TINY_GPT_OSS, tmp_path / "trusted")
    config_path = adapter_dir / "adapter_config.json"

    found, lines = gpt_oss_findings(config_path, None, base=reload.BaseModelSource(trusted, "lookup"))

    assert found == [] and lines[0].startswith(f"gpt-oss regression: base {trusted} (lookup)")
    assert not marker.exists()


def test_a_base_config_that_is_a_fifo_is_no_base_and_no_hang(tmp_path, capsys):
    adapter_dir, _ = evil_repository(tmp_path, {})
    base = adapter_dir.parent / "base"
    (base / "config.json").unlink()
    os.mkfifo(base / "config.json")

    found = findings(capsys, "--smoke", "--gpt-oss", adapter_dir)

    assert [f["code"] for f in found] == ["AG501"]
    assert "config.json` is unusable: cannot read it: not a regular file" in found[0]["message"]


def test_a_base_config_past_the_size_limit_is_not_read(tmp_path, capsys):
    adapter_dir, _ = evil_repository(tmp_path, {})
    config = adapter_dir.parent / "base" / "config.json"
    config.write_text(config.read_text()[:-1] + ', "padding": "' + "x" * (1024 * 1024) + '"}')

    found = findings(capsys, "--smoke", adapter_dir)

    assert [f["code"] for f in found] == ["AG501"]  # the shared lookup refuses it: the smoke is skipped, saying why
    assert "larger than 1048576 bytes" in found[0]["message"]
