"""The mlx-vlm target (``--target mlx-vlm[@VERSION]``) agrees with mlx-vlm's own loader.

Every sample is written by a real writer: mlx-vlm 0.7.10's save code (``vlm_writers``), mlx-vlm
0.5.0's (the recorded ``legacy_writers`` sample), PEFT's ``save_pretrained``, mlx-lm 0.18.2's CLI
(recorded), stock ``mlx_lm.tuner`` (``builders``); a few are then edited where a rule needs a
particular key. Each is loaded by ``apply_lora_layers`` of three releases on the same tiny LLaVA:
0.5.0 (the last of the old schema) and 0.7.6 (the last before the 0.7.8 loader) in venvs of their
own, and the installed 0.7.10. An adapter "works" on a release when it loads, every tensor binds
and the logits match the trained model's; adapter-guard must report an error for that release
exactly when it does not.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import builders
import legacy_writers
import numpy as np
import peft_writers
import pytest
import target_mlx_vlm_runtime as runtime
import vlm_writers

from adapter_guard.engine import run
from adapter_guard.registry import RULES
from adapter_guard.settings import Settings
from adapter_guard.targets import mlx_vlm, parse_target
from adapter_guard.targets.model import check_range

RELEASES = {"0.5.0": runtime.MLX_VLM_0_5, "0.7.6": runtime.MLX_VLM_0_7_6, "0.7.10": None}


# -- the samples -----------------------------------------------------------------------


def _edit_config(adapter_dir: Path, **changes) -> Path:
    path = adapter_dir / vlm_writers.CONFIG_NAME
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}, indent=2, sort_keys=True))
    return adapter_dir


def _copy(src: Path, dest: Path, **changes) -> Path:
    shutil.copytree(src, dest)
    return _edit_config(dest, **changes) if changes else dest


def build_samples(root: Path) -> dict[str, tuple[Path, object]]:
    """name -> (adapter folder, the trained model's logits on the tiny LLaVA, or None: not a LLaVA adapter)."""
    samples: dict[str, tuple[Path, object]] = {}
    for name in vlm_writers.CASES:  # lora, dora, full, legacy_current_writer: mlx-vlm 0.7.10's save code
        sample = vlm_writers.build_sample(name, root / name)
        samples[name] = (sample.adapter_dir, sample.live)
    old = legacy_writers.build_sample("mlx_vlm_0_5_legacy", root / "mlx_vlm_0_5_legacy")
    samples["mlx_vlm_0_5_legacy"] = (old.adapter_dir, old.live)

    lora_dir, lora_live = samples["lora"]
    legacy_dir, legacy_live = samples["legacy_current_writer"]
    full_dir, full_live = samples["full"]
    samples["legacy_extra_key"] = (_copy(legacy_dir, root / "legacy_extra_key", scale=2.0), legacy_live)
    samples["full_empty_lora_parameters"] = (_copy(full_dir, root / "full_empty_lora_parameters", lora_parameters={}), full_live)
    # unsloth mirrors rank/scale/dropout at the top level "for mlx-vlm" and writes peft_type: an mlx-lm-format
    # config whose tensors are the VLM's own (language_model....).
    unsloth_style = dict(peft_type="LORA", rank=4, scale=2.0, dropout=0.0)
    samples["unsloth_style_vlm"] = (_copy(lora_dir, root / "unsloth_style_vlm", **unsloth_style), lora_live)

    # Not mlx-vlm adapters: PEFT, mlx-lm 0.18.2, stock mlx-lm today, mlx-examples' npz.
    samples["peft_plain_qv"] = (peft_writers.build_sample("plain_qv", root / "peft_plain_qv").adapter_dir, None)
    samples["mlx_lm_0_18_lora"] = (legacy_writers.build_sample("mlx_lm_0_18_lora", root / "mlx_lm_0_18_lora").adapter_dir, None)
    # A folder with no config never reaches a target (it is linted as a lone weights file, AG821), so the npz
    # gets the old schema's config beside it: what someone pointing mlx-vlm at it would need.
    npz_dir = legacy_writers.build_sample("mlx_examples_lora_npz", root / "npz_with_old_schema_config").adapter_dir
    (npz_dir / vlm_writers.CONFIG_NAME).write_text(json.dumps({"rank": 8, "alpha": 160.0, "dropout": 0.0}))
    samples["npz_with_old_schema_config"] = (npz_dir, None)
    samples["mlx_lm_all_layers"] = (builders.llama_all_layers_adapter(root / "mlx_lm_all_layers").adapter_dir, None)
    return samples


#: What adapter-guard detects each sample as (the format rules' business; pinned so a change shows here).
FORMATS = {
    "lora": "mlx-vlm", "dora": "mlx-vlm", "full": "mlx-vlm", "legacy_current_writer": "mlx-vlm-legacy",
    "mlx_vlm_0_5_legacy": "mlx-vlm-legacy", "legacy_extra_key": "mlx-vlm-legacy",
    "full_empty_lora_parameters": "mlx-vlm", "unsloth_style_vlm": "mlx-lm", "peft_plain_qv": "peft-lora",
    "mlx_lm_0_18_lora": "mlx-lm-pre-0.19", "npz_with_old_schema_config": "adapters-npz", "mlx_lm_all_layers": "mlx-lm",
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return build_samples(tmp_path_factory.mktemp("mlx_vlm_target"))


@pytest.fixture(scope="module")
def outcomes(samples, tmp_path_factory) -> dict[str, dict[str, vlm_writers.Outcome]]:
    """release -> sample -> what that release's ``apply_lora_layers`` did with it on the tiny LLaVA."""
    names = sorted(samples)
    result = {}
    for release, requirement in RELEASES.items():
        if requirement is None:  # the installed release, in process
            result[release] = {n: _load_here(samples[n]) for n in names}
        else:
            base_dir = tmp_path_factory.mktemp("llava_base")
            answers = runtime.old_mlx_vlm_load(requirement, base_dir, [samples[n] for n in names])
            result[release] = dict(zip(names, answers, strict=True))
    return result


def _load_here(sample) -> vlm_writers.Outcome:
    adapter_dir, live = sample
    return vlm_writers.vlm_load(adapter_dir, live=live)


def works(outcome: vlm_writers.Outcome) -> bool:
    """Loads, every tensor binds, and (where known) reproduces the trained model."""
    if not outcome.loaded or outcome.unbound_keys:
        return False
    return outcome.max_abs_diff is None or outcome.max_abs_diff < 1e-4


def target_findings(adapter_dir: Path, version: str | None = None):
    spec = "mlx-vlm" + (f"@{version}" if version else "")
    results = run(Settings(paths=[adapter_dir], root=adapter_dir, targets=[parse_target(spec)]))
    return [f for r in results for f in r.findings if f.code.startswith("AG94")]


def target_errors(adapter_dir: Path, version: str | None = None) -> list[str]:
    return sorted(f.code for f in target_findings(adapter_dir, version) if f.severity == "error")


def detected_format(adapter_dir: Path) -> str | None:
    (result,) = run(Settings(paths=[adapter_dir], root=adapter_dir))
    return result.format


# -- the verdicts agree with the real loaders --------------------------------------------


def test_each_sample_is_the_format_it_was_written_in(samples):
    assert {name: detected_format(adapter_dir) for name, (adapter_dir, _) in samples.items()} == FORMATS


@pytest.mark.parametrize("release", list(RELEASES))
def test_the_target_reports_an_error_exactly_when_the_release_does_not_load_the_adapter(samples, outcomes, release):
    verdicts = {name: bool(target_errors(adapter_dir, release)) for name, (adapter_dir, _) in samples.items()}
    refused = {name: not works(outcome) for name, outcome in outcomes[release].items()}

    assert verdicts == refused


def test_the_matrix_is_not_trivial(outcomes):
    """Every release loads some samples and refuses others, so the agreement above says something."""
    for release, by_name in outcomes.items():
        assert any(works(o) for o in by_name.values()), release
        assert not all(works(o) for o in by_name.values()), release


def test_mlx_vlm_writers_samples_get_no_target_finding_where_their_release_loads_them(samples, outcomes):
    """No false alarm: every mlx-vlm sample that a release loads gets no mlx-vlm target finding at all."""
    checked = 0
    for release, by_name in outcomes.items():
        for name, outcome in by_name.items():
            if FORMATS[name].startswith("mlx-vlm") and works(outcome):
                assert target_findings(samples[name][0], release) == [], (name, release)
                checked += 1
    # 0.7.10 and 0.7.6 load the four 0.7.10 samples bar full (0.7.6) and both old-schema ones; 0.5.0 the old schema.
    assert checked == 7 + 6 + 2


# -- AG941: mlx-vlm 0.5 and older read only {rank, alpha, dropout} ------------------------


@pytest.mark.parametrize("name", ["lora", "dora", "full"])
def test_mlx_vlm_0_5_refuses_the_schema_mlx_vlm_0_6_writes(samples, outcomes, name):
    outcome = outcomes["0.5.0"][name]

    assert (outcome.error_type, outcome.error) == ("ValueError", "The adapter does not have lora params in the config")
    assert target_errors(samples[name][0], "0.5.0") == ["AG941"]
    assert "AG941" not in target_errors(samples[name][0], "0.6")


def test_mlx_vlm_0_5_refuses_an_extra_key_in_the_old_schema_which_later_releases_ignore(samples, outcomes):
    adapter_dir, _ = samples["legacy_extra_key"]

    assert outcomes["0.5.0"]["legacy_extra_key"].error_type == "TypeError"
    assert "unexpected keyword argument 'scale'" in outcomes["0.5.0"]["legacy_extra_key"].error
    assert works(outcomes["0.7.6"]["legacy_extra_key"]) and works(outcomes["0.7.10"]["legacy_extra_key"])
    (finding,) = target_findings(adapter_dir, "0.5.0")
    assert finding.code == "AG941"
    assert "`scale` raises TypeError" in finding.message
    assert finding.json_path == ("scale",)
    assert target_findings(adapter_dir, "0.6.0") == []


def test_the_old_schema_written_by_mlx_vlm_0_5_and_0_7_loads_on_every_release(samples, outcomes):
    for name in ("mlx_vlm_0_5_legacy", "legacy_current_writer"):
        for release in RELEASES:
            assert works(outcomes[release][name]), (name, release)
            assert target_findings(samples[name][0], release) == [], (name, release)


def test_mlx_vlm_0_1_to_0_5_share_the_rule_range():
    (rule,) = [r for r in mlx_vlm.PROFILE.rules if r.code == "AG941"]
    assert rule.versions == "<0.6"
    assert [parse_target(f"mlx-vlm@{v}").applicable([rule]) != [] for v in ("0.1.0", "0.5.0", "0.6.0")] == [True, True, False]


# -- AG942: a full fine-tune before 0.7.8 --------------------------------------------------


def test_a_full_fine_tune_is_refused_before_0_7_8_and_loads_from_it(samples, outcomes):
    adapter_dir, _ = samples["full"]

    assert (outcomes["0.7.6"]["full"].error_type, outcomes["0.7.6"]["full"].error) == (
        "ValueError", "The adapter does not have lora params in the config",
    )
    assert works(outcomes["0.7.10"]["full"])
    assert target_errors(adapter_dir, "0.7.6") == ["AG942"]
    assert target_errors(adapter_dir, "0.6.0") == ["AG942"]
    assert target_errors(adapter_dir, "0.7.8") == []
    assert target_errors(adapter_dir) == []


def test_the_advised_empty_lora_parameters_loads_the_full_fine_tune_on_0_7_6_and_0_7_10(samples, outcomes):
    """AG942's message says an empty ``lora_parameters`` lets 0.6-0.7.6 load it: proven, not assumed."""
    adapter_dir, _ = samples["full_empty_lora_parameters"]
    (finding,) = target_findings(samples["full"][0], "0.7.6")
    assert '"lora_parameters": {}' in finding.message

    assert works(outcomes["0.7.6"]["full_empty_lora_parameters"])
    assert works(outcomes["0.7.10"]["full_empty_lora_parameters"])
    assert target_findings(adapter_dir, "0.7.6") == []


# -- AG943: an mlx-lm adapter's tensors bind to nothing in a VLM --------------------------


def mlx_vlm_text_llama(config: dict):
    """mlx-vlm 0.7.10's own llama (a text-only model) with the weights of ``builders.make_base(config)``."""
    from mlx.utils import tree_flatten
    from mlx_vlm.utils import get_model_and_args, update_module_configs

    arch, _ = get_model_and_args(config)
    model_config = update_module_configs(
        arch.ModelConfig.from_dict(config), arch, config, ["text", "vision", "perceiver", "projector", "audio"]
    )
    model = arch.Model(model_config)
    weights = dict(tree_flatten(builders.make_base(config).parameters()))
    model.load_weights(list(model.sanitize(weights).items()), strict=True)
    model.eval()
    return model


def _logits(model, tokens):
    out = model(tokens)
    return np.array(getattr(out, "logits", out))


def test_a_stock_mlx_lm_adapter_has_no_effect_on_the_same_model_in_mlx_vlm(tmp_path):
    from mlx_vlm.trainer.peft.utils import apply_lora_layers

    built = builders.llama_all_layers_adapter(tmp_path / "mlx_lm")
    config = built.base_config
    tokens = builders.probe_tokens(config)
    trained = np.array(builders.reference_logits(built.model, tokens))
    base = _logits(mlx_vlm_text_llama(config), tokens)

    model = apply_lora_layers(mlx_vlm_text_llama(config), str(built.adapter_dir))
    model.eval()
    loaded = _logits(model, tokens)

    assert np.max(np.abs(loaded - base)) == 0.0
    assert np.max(np.abs(trained - base)) > 0.1
    (finding,) = target_findings(built.adapter_dir)
    assert finding.code == "AG943"
    assert "none of the tensors bind" in finding.message


def test_block_relative_keys_of_an_mlx_lm_adapter_are_an_attribute_error(tmp_path):
    from mlx_vlm.trainer.peft.utils import apply_lora_layers

    built = builders.llama_attention_adapter(tmp_path / "mlx_lm_keys")

    with pytest.raises(AttributeError, match="has no attribute 'self_attn'"):
        apply_lora_layers(mlx_vlm_text_llama(built.base_config), str(built.adapter_dir))
    (finding,) = target_findings(built.adapter_dir)
    assert finding.code == "AG943"
    assert "raise AttributeError" in finding.message


def test_an_mlx_lm_format_adapter_of_a_vlm_loads_and_is_not_reported(samples, outcomes):
    adapter_dir, _ = samples["unsloth_style_vlm"]

    assert works(outcomes["0.7.10"]["unsloth_style_vlm"]) and works(outcomes["0.7.6"]["unsloth_style_vlm"])
    assert target_findings(adapter_dir) == []


def test_ag943_starts_where_mlx_vlm_dropped_its_mlx_lm_fallback(tmp_path):
    """0.6.0-0.6.13 built a text-only architecture they lacked through mlx-lm, and loaded its mlx-lm adapter
    there; commit 738e4406 ("remove the MLX-LM fallback", first in v0.6.14) ended that. A lint cannot tell
    the base, so the rule stays quiet up to 0.6.13."""
    base_dir, adapter_dir, live = runtime.write_gptj_adapter(tmp_path)

    on_0_6_13 = runtime.text_model_load(runtime.MLX_VLM_0_6_13, base_dir, adapter_dir, live)
    on_0_6_14 = runtime.text_model_load(runtime.MLX_VLM_0_6_14, base_dir, adapter_dir, live)

    assert on_0_6_13["through_mlx_lm"] and on_0_6_13["max_abs_diff"] < 1e-4
    assert on_0_6_14["error_type"] == "ValueError" and "Model type gptj not supported" in on_0_6_14["error"]
    assert target_errors(adapter_dir, "0.6.13") == []
    assert target_errors(adapter_dir, "0.6.14") == ["AG943"]
    assert target_errors(adapter_dir, "0.5.0") == ["AG941"]  # no top-level rank: one finding per fact


# -- AG940: formats mlx-vlm cannot load ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "errors"),
    [
        ("peft_plain_qv", {"0.5.0": "ValueError", "0.7.6": "ValueError", "0.7.10": "FileNotFoundError"}),
        ("npz_with_old_schema_config", {"0.5.0": "RuntimeError", "0.7.6": "RuntimeError", "0.7.10": "FileNotFoundError"}),
    ],
)
def test_a_peft_adapter_and_an_npz_are_refused_by_every_release(samples, outcomes, name, errors):
    assert {release: outcomes[release][name].error_type for release in RELEASES} == errors
    for release in RELEASES:
        assert target_errors(samples[name][0], release) == ["AG940"]


def test_an_mlx_lm_0_18_adapter_binds_nothing_in_mlx_vlm(samples, outcomes):
    adapter_dir, _ = samples["mlx_lm_0_18_lora"]
    tensors = 8  # q/v of 2 layers, lora_a and lora_b

    assert len(outcomes["0.7.10"]["mlx_lm_0_18_lora"].unbound_keys) == tensors
    assert len(outcomes["0.7.6"]["mlx_lm_0_18_lora"].unbound_keys) == tensors
    assert outcomes["0.5.0"]["mlx_lm_0_18_lora"].error_type == "ValueError"
    (finding,) = target_findings(adapter_dir)
    assert finding.code == "AG940" and "`lora_layers`" in finding.message


# -- the table ------------------------------------------------------------------------------


def test_every_rule_is_registered_as_an_error_with_a_tagged_source_link():
    for rule in (mlx_vlm.PROFILE.wrong_format, *mlx_vlm.PROFILE.rules):
        assert rule.code.startswith("AG94") and RULES[rule.code].severity == "error"
        check_range(rule.versions)
        assert rule.url.startswith("https://github.com/Blaizzy/mlx-vlm/blob/v0.")
        assert "#L" in rule.url and rule.fails


def test_a_text_model_tensor_beside_the_vlms_own_is_named_and_counted(samples, tmp_path):
    """One ``model.layers...`` tensor added to a VLM-rooted mlx-lm-format adapter: it alone binds nowhere."""
    from safetensors.numpy import load_file, save_file

    adapter_dir = _copy(samples["unsloth_style_vlm"][0], tmp_path / "mixed")
    weights = adapter_dir / vlm_writers.WEIGHTS_NAME
    tensors = load_file(str(weights))
    stray = f"{vlm_writers.Q0}.lora_a".removeprefix("language_model.")
    save_file({**tensors, stray: tensors[f"{vlm_writers.Q0}.lora_a"]}, str(weights))

    outcome = vlm_writers.vlm_load(adapter_dir)

    assert outcome.loaded and outcome.unbound_keys == (stray,)
    (finding,) = target_findings(adapter_dir)
    assert finding.code == "AG943"
    assert f"1 of {len(tensors) + 1} tensors bind to nothing" in finding.message
    assert f"`{stray}`" in finding.message
