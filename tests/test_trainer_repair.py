"""One ``adapter-guard --fix`` repairs damaged copies of what the stock trainer wrote.

Every adapter starts as ``python -m mlx_lm lora --train`` output (``mlx_trainer.py``).
A copy loses or misplaces one thing, the way hand edits, converters and older
writers do; one ``--fix`` with the base reachable must bring it back, so that stock
``mlx_lm.load(base, adapter_path=...)`` reproduces the trained logits and a second
run finds nothing. The trained logits come from a stock reload of the untouched
adapter, so the oracle is mlx-lm itself.
"""

from __future__ import annotations

import copy
import json

import pytest

pytest.importorskip("mlx_lm", reason="the [mlx] extra is part of the test install")

from adapter_guard.cli import main  # noqa: E402

from test_mlx_trainer import FUSE_TOLERANCE, max_abs_diff  # noqa: E402

#: A stock reload of a repaired config against the trainer's own (float32, same tensors).
TOLERANCE = 1e-4
#: The variants with LoRA/DoRA factors (``full`` has no lora_parameters to damage).
ADAPTERS = ["lora-2-layers", "dora", "all-layers", "yaml-keys", "embedding", "qlora", "gpt-oss-experts", "gpt-oss-attention"]


def _lora(config):
    return config["lora_parameters"]


def _scale_to_mirror(config):
    config["scale"] = _lora(config).pop("scale")


def _mirrors_only(config):
    lora = config.pop("lora_parameters")
    config.update(rank=lora["rank"], scale=lora["scale"], dropout=lora["dropout"])


def _wrong_rank(config):
    _lora(config)["rank"] += 1


DAMAGES = {
    "num_layers removed": lambda c: c.pop("num_layers"),
    "rank removed": lambda c: _lora(c).pop("rank"),
    "dropout removed": lambda c: _lora(c).pop("dropout"),
    "scale moved to a top-level mirror": _scale_to_mirror,
    "fine_tune_type removed": lambda c: c.pop("fine_tune_type"),
    "lora_parameters reduced to mirrors": _mirrors_only,
    "wrong rank": _wrong_rank,
}


def write_config(adapter_dir, config) -> None:
    (adapter_dir / "adapter_config.json").write_text(json.dumps(config, indent=4), encoding="utf-8")


def read_config(adapter_dir) -> dict:
    return json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))


def damaged_copy(trained, tmp_path, damage):
    adapter_dir = trained.copy_to(tmp_path / "adapter")
    config = copy.deepcopy(trained.config)
    DAMAGES[damage](config)
    write_config(adapter_dir, config)
    return adapter_dir


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("name", ADAPTERS)
def test_one_fix_with_the_base_reachable_restores_the_trained_model(trainer_corpus, tmp_path, capsys, name, damage):
    trained = trainer_corpus[name]
    adapter_dir = damaged_copy(trained, tmp_path, damage)
    assert main([str(adapter_dir), "--base-model", str(trained.base_dir)]) == 1  # the damage is found

    assert main(["--fix", str(adapter_dir), "--base-model", str(trained.base_dir)]) == 0

    assert max_abs_diff(trained.logits(adapter_dir), trained.trained_logits()) < TOLERANCE
    fixed = (adapter_dir / "adapter_config.json").read_bytes()
    assert main([str(adapter_dir), "--base-model", str(trained.base_dir)]) == 0  # nothing left
    assert main(["--fix", str(adapter_dir), "--base-model", str(trained.base_dir)]) == 0
    assert (adapter_dir / "adapter_config.json").read_bytes() == fixed  # and nothing more to do


@pytest.mark.parametrize("damage", ["lora_parameters reduced to mirrors", "wrong rank"])
@pytest.mark.parametrize("name", ADAPTERS)
def test_smoke_passes_on_the_fixed_adapter(trainer_corpus, tmp_path, capsys, name, damage):
    trained = trainer_corpus[name]
    adapter_dir = damaged_copy(trained, tmp_path, damage)
    assert main(["--fix", str(adapter_dir), "--base-model", str(trained.base_dir)]) == 0
    capsys.readouterr()
    code = main(["--smoke", "--require-smoke", str(adapter_dir), "--base-model", str(trained.base_dir)])
    assert code == 0, capsys.readouterr().out


def test_the_base_named_by_the_config_inside_the_repository_is_found_without_base_model(
    trainer_corpus, tmp_path, monkeypatch, capsys
):
    # The trainer records `model` as it was given: here the base's directory, which sits
    # inside the repository when the run starts at the corpus root.
    trained = trainer_corpus["lora-2-layers"]
    adapter_dir = damaged_copy(trained, tmp_path, "num_layers removed")
    monkeypatch.chdir(trained.base_dir.parent.parent)
    assert main(["--fix", str(adapter_dir)]) == 0
    assert read_config(adapter_dir)["num_layers"] == trained.config["num_layers"]


def test_keys_from_the_tensors_leave_no_module_without_tensors(trainer_corpus, tmp_path, capsys):
    # yaml keys q/v/down_proj, reduced to mirrors: without keys mlx-lm's default set would
    # also wrap k_proj, o_proj, gate_proj and up_proj, with nothing to load into them.
    trained = trainer_corpus["yaml-keys"]
    adapter_dir = damaged_copy(trained, tmp_path, "lora_parameters reduced to mirrors")
    assert main(["--fix", str(adapter_dir), "--base-model", str(trained.base_dir)]) == 0
    assert read_config(adapter_dir)["lora_parameters"]["keys"] == sorted(_lora(trained.config)["keys"])


@pytest.mark.parametrize("name", ["lora-2-layers", "all-layers", "dora", "gpt-oss-attention"])
def test_default_keys_are_not_written_where_the_trainer_used_the_default_set(trainer_corpus, tmp_path, capsys, name):
    trained = trainer_corpus[name]
    adapter_dir = damaged_copy(trained, tmp_path, "lora_parameters reduced to mirrors")
    assert main(["--fix", str(adapter_dir), "--base-model", str(trained.base_dir)]) == 0
    assert "keys" not in read_config(adapter_dir)["lora_parameters"]


@pytest.mark.parametrize("name", ["yaml-keys", "gpt-oss-experts", "qlora"])
def test_stock_fuse_works_on_a_fixed_adapter(trainer_corpus, tmp_path, capsys, name):
    trained = trainer_corpus[name]
    adapter_dir = damaged_copy(trained, tmp_path, "lora_parameters reduced to mirrors")
    assert main(["--fix", str(adapter_dir), "--base-model", str(trained.base_dir)]) == 0
    fused = trained.fuse(tmp_path / "fused", adapter_dir)
    assert max_abs_diff(trained.fused_logits(fused), trained.trained_logits()) < FUSE_TOLERANCE


# -- pre-fix unsloth output, recreated from its documented format ----------------------------


def module_paths(adapter_dir) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(adapter_dir / "adapters.safetensors"), "numpy") as f:
        return sorted({name.rpartition(".")[0] for name in f.keys()})


def input_width(adapter_dir) -> int:
    """What the pre-#679 rank inference wrote for a switch module: lora_a.shape[-1]."""
    from safetensors import safe_open

    with safe_open(str(adapter_dir / "adapters.safetensors"), "numpy") as f:
        first = sorted(n for n in f.keys() if n.endswith(".lora_a"))[0]
        return f.get_slice(first).get_shape()[-1]


def unsloth_trainer_save(trained, adapter_dir) -> dict:
    """``MLXTrainer.save_model`` before unsloth-zoo #679 (adapter-formats.md section 4): its
    key set, with the input width read as the rank in lora_parameters and in the
    top-level mirror, and no keys."""
    lora = _lora(trained.config)
    width = input_width(adapter_dir)
    return {
        "fine_tune_type": "lora",
        "peft_type": "LORA",
        "base_model_name_or_path": str(trained.base_dir),
        "learning_rate": 0.01,
        "max_steps": 2,
        "max_seq_length": 64,
        "use_cce": False,
        "num_layers": trained.base_config["num_hidden_layers"],
        "lora_parameters": {"rank": width, "scale": lora["scale"], "dropout": lora["dropout"]},
        "rank": width,
        "scale": lora["scale"],
        "dropout": lora["dropout"],
    }


def test_the_pre_fix_unsloth_gpt_oss_expert_rank_is_repaired_by_one_fix(trainer_corpus, tmp_path, capsys):
    import mlx_lm

    trained = trainer_corpus["gpt-oss-experts"]
    adapter_dir = trained.copy_to(tmp_path / "adapter")
    config = unsloth_trainer_save(trained, adapter_dir)
    assert config["rank"] != _lora(trained.config)["rank"]
    write_config(adapter_dir, config)
    with pytest.raises(ValueError):  # as written, stock mlx-lm refuses it
        mlx_lm.load(str(trained.base_dir), adapter_path=str(adapter_dir))

    assert main(["--fix", str(adapter_dir), "--base-model", str(trained.base_dir)]) == 0

    fixed = read_config(adapter_dir)
    assert fixed["lora_parameters"]["rank"] == fixed["rank"] == _lora(trained.config)["rank"]
    assert max_abs_diff(trained.logits(adapter_dir), trained.trained_logits()) < TOLERANCE
    assert main([str(adapter_dir), "--base-model", str(trained.base_dir)]) == 0


@pytest.mark.parametrize("name", ["gpt-oss-experts", "yaml-keys"])
def test_a_pre_fix_unsloth_direct_save_with_only_module_paths_reloads_after_one_fix_and_the_scale(
    trainer_corpus, tmp_path, capsys, name
):
    trained = trainer_corpus[name]
    adapter_dir = trained.copy_to(tmp_path / "adapter")
    write_config(adapter_dir, {"unsloth_mlx_lora_module_paths": module_paths(adapter_dir)})

    code = main(["--fix", "--output-format", "json", str(adapter_dir), "--base-model", str(trained.base_dir)])
    left = [f for f in json.loads(capsys.readouterr().out) if not f["fixed"]]
    assert code == 1 and [f["code"] for f in left] == ["AG204"]  # no file holds the scale: said, not invented

    config = read_config(adapter_dir)
    config["lora_parameters"]["scale"] = _lora(trained.config)["scale"]  # the one value set by hand
    write_config(adapter_dir, config)
    assert main([str(adapter_dir), "--base-model", str(trained.base_dir)]) == 0
    assert max_abs_diff(trained.logits(adapter_dir), trained.trained_logits()) < TOLERANCE
