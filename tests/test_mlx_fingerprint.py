"""Behavioural fingerprints: a scale edited after saving is caught; an untouched adapter passes."""

from __future__ import annotations

import json

import builders
import mlx.core as mx
import pytest

from adapter_guard.mlx import fingerprint
from adapter_guard.mlx.fingerprint import compare, probe_uniform
from adapter_guard.mlx.reload import reload_adapter
from adapter_guard.mlx.save import save_adapters
from adapter_guard.mlx.smoke import run_smoke

LLAMA = builders.tiny_llama_config()
GPT_OSS = builders.tiny_gpt_oss_config()

LAYOUTS = builders.live_layouts()


@pytest.fixture(autouse=True)
def _run_in_the_repository(tmp_path, monkeypatch):
    # Without a resolved base, --smoke uses the lint's lookup with the working
    # directory as the repository root: a test's tmp_path is its repository.
    monkeypatch.chdir(tmp_path)


def _saved(tmp_path, base_config, **kwargs):
    model = builders.make_live_adapter(base_config, **kwargs)
    base_dir = builders.write_base_dir(base_config, tmp_path / "base")
    save_adapters(model, tmp_path / "adapter", {"model": str(base_dir)})
    return tmp_path / "adapter" / "adapter_config.json"


def _edit(config_path, **lora_parameters):
    config = json.loads(config_path.read_text())
    config["lora_parameters"].update(lora_parameters)
    config_path.write_text(json.dumps(config, indent=4))
    return config


def _smoke(config_path):
    return run_smoke(config_path, json.loads(config_path.read_text()))


def _fingerprint_findings(result):
    return [f for f in result.findings if f.code == "AG509"]


# -- the probe -------------------------------------------------------------------------------


def test_probe_is_the_same_on_every_machine():
    # Pinned: a fingerprint recorded anywhere must be recomputable anywhere.
    assert probe_uniform(4, "x4", 0) == (-0.378980555335674, 0.6513965207971488, -0.39751779541106447, -0.6026947393232684)


def test_probe_streams_differ_by_name_and_seed():
    assert probe_uniform(4, "x4", 0) != probe_uniform(4, "x8", 0)
    assert probe_uniform(4, "x4", 0) != probe_uniform(4, "x4", 1)


# -- end to end -------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_unedited_adapter_matches_its_fingerprint(tmp_path, layout):
    base_config, kwargs = LAYOUTS[layout]
    result = _smoke(_saved(tmp_path, base_config, **kwargs))

    assert _fingerprint_findings(result) == []
    assert any("fingerprint:" in note and "modules match" in note for note in result.notes)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_edited_scale_fails_the_fingerprint(tmp_path, layout):
    base_config, kwargs = LAYOUTS[layout]
    config_path = _saved(tmp_path, base_config, scale=1.0, **kwargs)
    _edit(config_path, scale=20.0)

    [finding] = _fingerprint_findings(_smoke(config_path))

    assert finding.message.endswith("delta is 20.0x the recorded one: scale in config is 20.0, trained with 1.0")
    assert finding.json_path == ("lora_parameters", "scale")


def test_mismatch_names_the_module(tmp_path):
    config_path = _saved(tmp_path, LLAMA, num_layers=2, keys=["self_attn.q_proj"], scale=2.0)
    _edit(config_path, scale=0.5)

    [finding] = _fingerprint_findings(_smoke(config_path))

    assert finding.message == (
        "model.layers.2.self_attn.q_proj (and 1 more modules): "
        "delta is 0.25x the recorded one: scale in config is 0.5, trained with 2.0"
    )


def test_delta_does_not_depend_on_the_base_weights(tmp_path):
    config_path = _saved(tmp_path, LLAMA, num_layers=2, keys=builders.ATTENTION_KEYS)
    doc = fingerprint.load(config_path.parent)
    other_base = builders.make_base(LLAMA, seed=7)
    reloaded = dict(reload_adapter(other_base, config_path.parent).named_modules())

    for path, recorded in doc["modules"].items():
        current = fingerprint.summarize(fingerprint.module_delta(reloaded[path]))
        assert compare(recorded, current).ok, path


def test_changed_weights_make_the_fingerprint_stale(tmp_path):
    config_path = _saved(tmp_path, LLAMA, num_layers=2)
    retrained = builders.make_live_adapter(LLAMA, num_layers=2, seed=5)
    mx.save_safetensors(str(config_path.parent / "adapters.safetensors"), builders.adapter_tensors(retrained))

    [finding] = _fingerprint_findings(_smoke(config_path))

    assert "recorded for a different adapters.safetensors" in finding.message


def test_a_malformed_sidecar_is_a_finding_not_a_crash(tmp_path):
    config_path = _saved(tmp_path, LLAMA, num_layers=2)
    (config_path.parent / fingerprint.FINGERPRINT_FILE).write_text("{not json")

    [finding] = _fingerprint_findings(_smoke(config_path))

    assert "is not valid JSON" in finding.message


def test_without_a_sidecar_the_smoke_says_scale_is_unverified(tmp_path):
    config_path = _saved(tmp_path, LLAMA, num_layers=2)
    (config_path.parent / fingerprint.FINGERPRINT_FILE).unlink()
    result = _smoke(config_path)

    assert result.findings == []
    assert any("scale cannot be verified" in note for note in result.notes)


# -- compare, on plain numbers ------------------------------------------------------------------


def _summary(values, scale=1.0):
    values = [v * scale for v in values]
    return {"shape": [len(values)], "norm": sum(v * v for v in values) ** 0.5, "sample": values, "scale": 1.0}


VALUES = [0.5, -1.25, 2.0, 0.125, -0.75]


def test_identical_deltas_match():
    assert compare(_summary(VALUES), _summary(VALUES)).ok


def test_deltas_within_the_tolerance_match():
    assert compare(_summary(VALUES), _summary(VALUES, 1 + fingerprint.RTOL / 10)).ok


def test_deltas_beyond_the_tolerance_do_not_match():
    assert not compare(_summary(VALUES), _summary(VALUES, 1 + fingerprint.RTOL * 10)).ok


def test_a_multiple_of_the_recorded_delta_reports_its_factor():
    result = compare(_summary(VALUES), _summary(VALUES, -3.0))

    assert result.factor == pytest.approx(-3.0)


def test_an_unrelated_delta_has_no_factor():
    assert compare(_summary(VALUES), _summary(list(reversed(VALUES)))).factor is None


def test_a_different_shape_never_matches():
    other = dict(_summary(VALUES), shape=[5, 1])

    assert not compare(_summary(VALUES), other).ok
