"""The mlx-lm target (``--target mlx-lm[@VERSION]``): each rule's verdict against the real release.

Adapters come from the real writers: the stock ``mlx_lm lora`` trainer of 0.32.2 (``trainer_corpus``)
and the recorded output of 0.18.2's trainer (``legacy_corpus``). Each is loaded with
``mlx_lm.load(base, adapter_path=...)`` of the release the rule speaks about (0.18.2 and 0.31.3 in
venvs of their own, 0.32.2 here) on the trainer's own tiny base, and adapter-guard's verdict must say
what that load did: refused, loaded with tensors ignored (logits away from the trained model's), or
loaded as trained.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from target_mlx_lm_runtime import MLX_LM_0_18, MLX_LM_0_21, MLX_LM_0_28, MLX_LM_0_31, load_logits, max_diff

from adapter_guard.engine import run
from adapter_guard.settings import Settings
from adapter_guard.targets import parse_target
from adapter_guard.targets.model import in_range

#: Same logits: what a faithful reload gives (float32 on CPU).
SAME = 1e-4
#: A dropped tensor moves the logits by far more than this on the trained samples.
MOVED = 1e-3


def lint(adapter_dir: Path, target: str, *, fix: bool = False):
    [result] = run(Settings(paths=[adapter_dir], root=adapter_dir, targets=[parse_target(target)], fix=fix))
    return result


def target_codes(result) -> list[str]:
    return sorted(f.code for f in result.findings if f.code.startswith("AG93") and not f.fixed)


def edit_config(adapter_dir: Path, **changes) -> None:
    path = adapter_dir / "adapter_config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config, indent=4))


@pytest.fixture
def copy_of(trainer_corpus, tmp_path):
    def copy(name: str) -> tuple[Path, Path]:
        sample = trainer_corpus[name]
        return sample.copy_to(tmp_path / name), sample.base_dir

    return copy


# -- AG931 / AG935: a current adapter on mlx-lm 0.18 ----------------------------------


def test_a_current_adapter_fails_on_0_18_for_want_of_lora_layers(copy_of):
    adapter_dir, base = copy_of("lora-2-layers")

    result = lint(adapter_dir, "mlx-lm@0.18")

    assert "AG931" in target_codes(result)
    assert load_logits(MLX_LM_0_18, base, adapter_dir).error.startswith("AttributeError")
    assert "lora_layers" in load_logits(MLX_LM_0_18, base, adapter_dir).error


def test_the_0_18_fixes_load_the_same_logits_on_0_18_and_0_32(copy_of):
    """lora_layers from num_layers and keys from the tensors: the trained model on both releases."""
    adapter_dir, base = copy_of("lora-2-layers")
    trained = load_logits(None, base, adapter_dir)

    lint(adapter_dir, "mlx-lm@0.18", fix=True)

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert (config["lora_layers"], config["num_layers"]) == (2, 2)
    assert target_codes(lint(adapter_dir, "mlx-lm@0.18")) == []
    assert max_diff(load_logits(MLX_LM_0_18, base, adapter_dir), trained) < SAME
    assert max_diff(load_logits(None, base, adapter_dir), trained) < SAME


def test_without_keys_0_18_drops_every_module_but_q_and_v(copy_of):
    """AG935: lora_layers alone makes 0.18 load, but with Llama's default q/v set only."""
    adapter_dir, base = copy_of("lora-2-layers")
    trained = load_logits(None, base, adapter_dir)
    edit_config(adapter_dir, lora_layers=2)

    result = lint(adapter_dir, "mlx-lm@0.18")
    old = load_logits(MLX_LM_0_18, base, adapter_dir)

    assert target_codes(result) == ["AG935"]
    assert old.loaded and max_diff(old, trained) > MOVED


def test_num_layers_minus_one_is_spelt_lora_layers_minus_one(copy_of):
    adapter_dir, base = copy_of("all-layers")
    trained = load_logits(None, base, adapter_dir)

    lint(adapter_dir, "mlx-lm@0.18", fix=True)

    assert json.loads((adapter_dir / "adapter_config.json").read_text())["lora_layers"] == -1
    assert max_diff(load_logits(MLX_LM_0_18, base, adapter_dir), trained) < SAME


# -- AG932: DoRA on 0.18 ------------------------------------------------------------------


def test_a_dora_adapter_without_use_dora_loads_as_plain_lora_on_0_18(copy_of):
    adapter_dir, base = copy_of("dora")
    trained = load_logits(None, base, adapter_dir)
    keys = sorted({n.rsplit(".", 1)[0].split(".", 3)[3] for n in _tensor_names(adapter_dir)})
    edit_config(adapter_dir, lora_layers=2)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    edit_config(adapter_dir, lora_parameters={**config["lora_parameters"], "keys": keys})

    result = lint(adapter_dir, "mlx-lm@0.18")
    old = load_logits(MLX_LM_0_18, base, adapter_dir)

    assert target_codes(result) == ["AG932"]
    assert old.loaded and max_diff(old, trained) > MOVED


def test_the_use_dora_fix_loads_the_dora_adapter_on_0_18_as_trained(copy_of):
    adapter_dir, base = copy_of("dora")
    trained = load_logits(None, base, adapter_dir)

    lint(adapter_dir, "mlx-lm@0.18", fix=True)

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert (config["use_dora"], config["fine_tune_type"]) == (True, "dora")
    assert target_codes(lint(adapter_dir, "mlx-lm@0.18")) == []
    assert max_diff(load_logits(MLX_LM_0_18, base, adapter_dir), trained) < SAME
    assert max_diff(load_logits(None, base, adapter_dir), trained) < SAME


# -- AG933: full fine-tuning before 0.19 -----------------------------------------------------


def test_a_full_fine_tune_does_not_load_on_0_18_and_gets_no_fix(copy_of):
    adapter_dir, base = copy_of("full")
    edit_config(adapter_dir, lora_layers=2)  # even with the old key, 0.18 cannot read it

    result = lint(adapter_dir, "mlx-lm@0.18", fix=True)

    assert target_codes(result) == ["AG933"]
    assert not load_logits(MLX_LM_0_18, base, adapter_dir).loaded
    assert load_logits(None, base, adapter_dir).loaded


# -- AG934: tensors ignored before 0.32 ---------------------------------------------------


def test_keys_that_miss_a_module_lose_its_tensors_silently_before_0_32(copy_of):
    adapter_dir, base = copy_of("yaml-keys")
    trained = load_logits(None, base, adapter_dir)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    keys = [k for k in config["lora_parameters"]["keys"] if k != "mlp.down_proj"]
    edit_config(adapter_dir, lora_parameters={**config["lora_parameters"], "keys": keys})

    old, new = load_logits(MLX_LM_0_31, base, adapter_dir), load_logits(None, base, adapter_dir)

    assert old.loaded and max_diff(old, trained) > MOVED
    assert "incompatible tensors" in new.error
    assert target_codes(lint(adapter_dir, "mlx-lm@0.31")) == ["AG934"]
    assert target_codes(lint(adapter_dir, "mlx-lm")) == []  # 0.32 refuses: the format rule (AG402) says it


def test_m_tensors_without_dora_are_dropped_silently_before_0_32(copy_of):
    adapter_dir, base = copy_of("dora")
    trained = load_logits(None, base, adapter_dir)
    edit_config(adapter_dir, fine_tune_type="lora")

    old, new = load_logits(MLX_LM_0_31, base, adapter_dir), load_logits(None, base, adapter_dir)
    result = lint(adapter_dir, "mlx-lm@0.31")

    assert old.loaded and max_diff(old, trained) > MOVED
    assert not new.loaded
    assert target_codes(result) == ["AG934"]
    assert "AG305" in [f.code for f in result.findings]  # the format rule says why


def test_an_adapter_0_31_loads_as_trained_gets_no_ag934(copy_of):
    adapter_dir, base = copy_of("yaml-keys")

    assert max_diff(load_logits(MLX_LM_0_31, base, adapter_dir), load_logits(None, base, adapter_dir)) < SAME
    assert target_codes(lint(adapter_dir, "mlx-lm@0.31")) == []


# -- AG937: a negative num_layers on 0.19-0.21.4 ---------------------------------------------


def test_num_layers_minus_one_skips_layer_0_on_0_21(copy_of):
    adapter_dir, base = copy_of("all-layers")
    trained = load_logits(None, base, adapter_dir)

    old = load_logits(MLX_LM_0_21, base, adapter_dir)

    assert target_codes(lint(adapter_dir, "mlx-lm@0.21.4")) == ["AG937"]
    assert old.loaded and max_diff(old, trained) > MOVED
    assert target_codes(lint(adapter_dir, "mlx-lm@0.21.5")) == []


def test_num_layers_0_wraps_every_layer_on_0_21_and_0_32(copy_of):
    adapter_dir, base = copy_of("all-layers")
    trained = load_logits(None, base, adapter_dir)
    edit_config(adapter_dir, num_layers=0)

    assert target_codes(lint(adapter_dir, "mlx-lm@0.21.4")) == []
    assert max_diff(load_logits(MLX_LM_0_21, base, adapter_dir), trained) < SAME
    assert max_diff(load_logits(None, base, adapter_dir), trained) < SAME


# -- AG938: the expert factors' layout --------------------------------------------------------


def test_current_expert_factors_break_on_0_28_2(copy_of):
    adapter_dir, base = copy_of("gpt-oss-experts")
    trained = load_logits(None, base, adapter_dir)

    old = load_logits(MLX_LM_0_28, base, adapter_dir)

    assert target_codes(lint(adapter_dir, "mlx-lm@0.28.2")) == ["AG938"]
    assert not old.loaded or not max_diff(old, trained) < SAME
    assert target_codes(lint(adapter_dir, "mlx-lm@0.28.3")) == []


# -- AG930: formats mlx-lm does not load ----------------------------------------------------


def test_a_peft_adapter_is_the_wrong_format_for_mlx_lm(peft_corpus, trainer_corpus, tmp_path):
    name = next(iter(peft_corpus))
    adapter_dir = Path(shutil.copytree(peft_corpus[name].adapter_dir, tmp_path / name))

    result = lint(adapter_dir, "mlx-lm")

    assert target_codes(result) == ["AG930"]
    assert "PEFT" in next(f.message for f in result.findings if f.code == "AG930")
    assert not load_logits(None, trainer_corpus["lora-2-layers"].base_dir, adapter_dir).loaded


@pytest.mark.parametrize(("target", "effect"), [("mlx-lm", "refuses"), ("mlx-lm@0.31", "ignored")])
def test_an_mlx_vlm_adapter_is_the_wrong_format_for_mlx_lm(vlm_corpus, tmp_path, target, effect):
    """mlx-lm 0.32.2 refuses `language_model.` tensors (d53e70f7 load_adapters); 0.31.3 drops them
    (v0.31.3 mlx_lm/tuner/utils.py#L137, strict=False): reference §2, RUN-M."""
    adapter_dir = Path(shutil.copytree(vlm_corpus["lora"].adapter_dir, tmp_path / "vlm"))

    result = lint(adapter_dir, target)

    assert target_codes(result) == ["AG930"]
    assert effect in next(f.message for f in result.findings if f.code == "AG930")


# -- AG936: before adapter folders ---------------------------------------------------------


def test_an_adapter_folder_needs_mlx_lm_0_6(legacy_corpus, tmp_path):
    """mlx-lm 0.5.0 reads only ``--adapter-file adapters.npz`` (mlx-examples d661440d
    llms/mlx_lm/tuner/utils.py apply_lora_layers, L99-L128); the config folder is 0.6.0's (#636)."""
    adapter_dir = Path(shutil.copytree(legacy_corpus["mlx_lm_0_18_lora"].adapter_dir, tmp_path / "a"))

    assert target_codes(lint(adapter_dir, "mlx-lm@0.5")) == ["AG936"]
    assert target_codes(lint(adapter_dir, "mlx-lm@0.6")) == []


# -- no false alarms ------------------------------------------------------------------------

#: Trainer samples that load as trained on each release (checked below for 0.31.3 and 0.32.2).
WORKING_NOW = ("lora-2-layers", "dora", "all-layers", "yaml-keys", "embedding", "full", "qlora",
               "gpt-oss-experts", "gpt-oss-attention", "resume")  # fmt: skip


@pytest.mark.parametrize("target", ["mlx-lm", "mlx-lm@0.32.0", "mlx-lm@0.31.3", "mlx-lm@0.28.3"])
def test_the_current_trainers_adapters_get_no_target_finding_where_they_load(trainer_corpus, target):
    found = {name: target_codes(lint(trainer_corpus[name].adapter_dir, target)) for name in WORKING_NOW}

    assert found == {name: [] for name in WORKING_NOW}


@pytest.mark.parametrize("name", ["lora-2-layers", "yaml-keys", "embedding", "full"])
def test_the_trainer_samples_load_as_trained_on_0_31(trainer_corpus, name):
    """What the no-false-alarm test relies on, for the release before the strict check."""
    sample = trainer_corpus[name]

    assert max_diff(load_logits(MLX_LM_0_31, sample.base_dir, sample.adapter_dir),
                    load_logits(None, sample.base_dir, sample.adapter_dir)) < SAME  # fmt: skip


@pytest.mark.parametrize("name", ["yaml-keys", "embedding", "full"])
def test_samples_0_21_loads_as_trained_get_no_target_finding_at_0_21(trainer_corpus, name):
    sample = trainer_corpus[name]

    assert max_diff(load_logits(MLX_LM_0_21, sample.base_dir, sample.adapter_dir),
                    load_logits(None, sample.base_dir, sample.adapter_dir)) < SAME  # fmt: skip
    assert target_codes(lint(sample.adapter_dir, "mlx-lm@0.21.4")) == []


@pytest.mark.parametrize("name", ["mlx_lm_0_18_lora", "mlx_lm_0_18_dora"])
def test_the_0_18_trainers_adapters_get_no_target_finding_at_0_18(legacy_corpus, name):
    """The recorded 0.18.2 output loads on 0.18.2 as its own loader made it (tests/test_legacy_oracle.py)."""
    result = lint(legacy_corpus[name].adapter_dir, "mlx-lm@0.18")

    assert target_codes(result) == []


def test_every_rule_range_parses_and_names_its_source():
    from adapter_guard.registry import RULES
    from adapter_guard.targets.mlx_lm import PROFILE

    for rule in (PROFILE.wrong_format, *PROFILE.rules):
        assert in_range((0, 32, 2), rule.versions) in (True, False)
        assert rule.code in RULES and rule.url.startswith("https://github.com/ml-explore/")
        assert rule.source and rule.fails


def _tensor_names(adapter_dir: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(adapter_dir / "adapters.safetensors"), "np") as f:
        return list(f.keys())
