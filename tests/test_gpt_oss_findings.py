"""gpt_oss_findings: the entry point behind ``adapter-guard --gpt-oss``."""

from __future__ import annotations

import json

import pytest

mx = pytest.importorskip("mlx.core")

from builders import make_live_adapter, save_mlx_lm_style, tiny_gpt_oss_config, tiny_llama_config, write_base_dir  # noqa: E402

from gpt_oss_hooks import Hooked  # noqa: E402

from adapter_guard.mlx import gpt_oss, reload  # noqa: E402
from adapter_guard.mlx.gpt_oss import BUILTIN_PATH, TINY_GPT_OSS, build_tiny_gpt_oss, gpt_oss_findings  # noqa: E402

#: gpt-oss-20b's shapes: far too big to build with random weights here.
GPT_OSS_20B = dict(
    TINY_GPT_OSS,
    num_hidden_layers=24,
    layer_types=["sliding_attention", "full_attention"] * 12,
    sliding_window=128,
    hidden_size=2880,
    intermediate_size=2880,
    head_dim=64,
    num_attention_heads=64,
    num_key_value_heads=8,
    num_local_experts=32,
    num_experts_per_tok=4,
    vocab_size=201088,
)

@pytest.fixture(autouse=True)
def _run_in_the_repository(tmp_path, monkeypatch):
    # Without a resolved base, the checks use the lint's lookup with the working
    # directory as the repository root: a test's tmp_path is its repository.
    monkeypatch.chdir(tmp_path)



def save_adapter(adapter_dir, base_config=TINY_GPT_OSS, *, dropout=0.0, extra=None):
    """A seeded, non-zero LoRA on every linear and expert projection, saved like mlx_lm.lora."""
    params = {"rank": 4, "scale": 2.0, "dropout": dropout}
    model = make_live_adapter(base_config, num_layers=-1, dropout=dropout)
    save_mlx_lm_style(model, adapter_dir, num_layers=-1, lora_parameters=params, extra=extra)
    return adapter_dir / "adapter_config.json"


def read(path):
    return json.loads(path.read_text())


def codes(findings):
    return [f.code for f in findings]


def test_builtin_run_has_no_findings():
    findings, _ = gpt_oss_findings(None, None, base_model=None)
    assert findings == []


def test_builtin_report_has_a_line_per_scenario_with_steps_and_max_diff():
    _, lines = gpt_oss_findings(None, None, base_model=None)
    assert lines[0].startswith("gpt-oss regression: built-in tiny gpt-oss (seed 0), no adapter, window 16, 4 layers")
    assert [line.split(":")[0] for line in lines[1:6]] == [
        "gpt-oss prefill-1", "gpt-oss prefill-W-1", "gpt-oss prefill-W", "gpt-oss prefill-W+1", "gpt-oss reported-scaled",
    ]
    assert all(" steps, max |logit diff| " in line and line.endswith(" ok") for line in lines[1:6])


def test_builtin_findings_are_filed_under_the_builtin_path(monkeypatch):
    build = gpt_oss.build_tiny_gpt_oss
    no_mask = Hooked(build(), mask_fn=lambda h, c, w: None)  # every layer attends to every key
    monkeypatch.setattr(gpt_oss, "build_tiny_gpt_oss", lambda *a, **k: no_mask)
    findings, _ = gpt_oss_findings(None, None, base_model=None)
    assert findings and {f.path for f in findings} == {BUILTIN_PATH}


def test_no_adapter_and_a_gpt_oss_base_runs_on_that_base(tmp_path):
    base = write_base_dir(TINY_GPT_OSS, tmp_path / "base")
    findings, lines = gpt_oss_findings(None, None, base_model=base)
    assert findings == []
    assert lines[0].startswith(f"gpt-oss regression: base {base} (--base-model), seeded random weights (config.json only), no adapter")


def test_no_adapter_and_a_non_gpt_oss_base_runs_the_builtin(tmp_path):
    base = write_base_dir(tiny_llama_config(), tmp_path / "base")
    _, lines = gpt_oss_findings(None, None, base_model=base)
    assert lines[0].startswith("gpt-oss regression: built-in tiny gpt-oss")


def test_builtin_config_matches_the_shared_tiny_gpt_oss_builder():
    assert {k: v for k, v in TINY_GPT_OSS.items()} == tiny_gpt_oss_config()


def test_builtin_model_is_seeded():
    assert mx.array_equal(build_tiny_gpt_oss().lm_head.weight, build_tiny_gpt_oss().lm_head.weight).item()


def test_adapter_on_gpt_oss_base_is_applied_and_passes(tmp_path):
    config_path = save_adapter(tmp_path / "adapter")
    base = write_base_dir(TINY_GPT_OSS, tmp_path / "base")
    findings, lines = gpt_oss_findings(config_path, read(config_path), base_model=base)
    assert (findings, "random weights" in lines[0], f"adapter {config_path.parent}" in lines[0]) == ([], True, True)


def test_base_with_weights_is_loaded_not_rebuilt(tmp_path):
    from mlx.utils import tree_flatten

    base = write_base_dir(TINY_GPT_OSS, tmp_path / "base")
    mx.save_safetensors(str(base / "model.safetensors"), dict(tree_flatten(build_tiny_gpt_oss().parameters())))
    config_path = save_adapter(tmp_path / "adapter")
    findings, lines = gpt_oss_findings(config_path, read(config_path), base_model=base)
    assert (findings, f"base {base} (--base-model), its weights" in lines[0]) == ([], True)


def test_base_config_beside_the_adapter_is_used(tmp_path):
    config_path = save_adapter(tmp_path / "adapter")
    write_base_dir(TINY_GPT_OSS, tmp_path / "adapter")
    _, lines = gpt_oss_findings(config_path, read(config_path), base_model=None)
    assert f"base {tmp_path / 'adapter'} (beside the adapter)" in lines[0]


def test_base_named_by_base_model_name_or_path_is_used(tmp_path):
    base = write_base_dir(TINY_GPT_OSS, tmp_path / "base")
    config_path = save_adapter(tmp_path / "adapter", extra={"base_model_name_or_path": str(base)})
    _, lines = gpt_oss_findings(config_path, read(config_path), base_model=None)
    assert f"base {base} (named by the adapter config's `base_model_name_or_path`)" in lines[0]


def test_config_is_read_from_the_path_when_not_given(tmp_path):
    base = write_base_dir(TINY_GPT_OSS, tmp_path / "base")
    config_path = save_adapter(tmp_path / "adapter", extra={"base_model_name_or_path": str(base)})
    _, lines = gpt_oss_findings(config_path, None, base_model=None)
    assert f"base {base}" in lines[0]


def test_adapter_whose_base_is_not_gpt_oss_gives_nothing(tmp_path):
    config_path = save_adapter(tmp_path / "adapter", tiny_llama_config())
    base = write_base_dir(tiny_llama_config(), tmp_path / "base")
    assert gpt_oss_findings(config_path, read(config_path), base_model=base) == ([], [])


def test_adapter_without_a_local_base_gives_nothing(tmp_path):
    config_path = save_adapter(tmp_path / "adapter")  # "model": "tiny-base", not a directory
    assert gpt_oss_findings(config_path, read(config_path), base_model=None) == ([], [])


def test_adapter_whose_shapes_do_not_fit_the_base_is_skipped(tmp_path):
    config_path = save_adapter(tmp_path / "adapter", tiny_gpt_oss_config(hidden_size=48))
    base = write_base_dir(TINY_GPT_OSS, tmp_path / "base")
    findings, _ = gpt_oss_findings(config_path, read(config_path), base_model=base)
    assert codes(findings) == ["AG603"]
    assert "does not match model parameter shape" in findings[0].message


def test_base_too_large_to_build_with_random_weights_is_skipped(tmp_path):
    config_path = save_adapter(tmp_path / "adapter")
    base = write_base_dir(GPT_OSS_20B, tmp_path / "base")
    findings, _ = gpt_oss_findings(config_path, read(config_path), base_model=base)
    assert codes(findings) == ["AG603"] and "20,914,757,184 parameters" in findings[0].message


def test_adapters_safetensors_beside_a_copied_base_config_are_not_base_weights(tmp_path):
    config_path = save_adapter(tmp_path / "adapter")
    write_base_dir(GPT_OSS_20B, tmp_path / "adapter")
    findings, _ = gpt_oss_findings(config_path, read(config_path), base_model=None)
    assert codes(findings) == ["AG603"] and "has no weights" in findings[0].message


def findings_left_in_training_mode(monkeypatch, config_path, base):
    """The upstream bug: stock load_adapters leaves the model in training mode, dropout on."""
    from mlx_lm.tuner.utils import load_adapters

    monkeypatch.setattr(reload, "reload_adapter", lambda model, adapter_dir: load_adapters(model, str(adapter_dir)))
    return gpt_oss_findings(config_path, read(config_path), base_model=base)


def test_adapter_with_dropout_left_in_training_mode_is_reported(tmp_path, monkeypatch):
    config_path = save_adapter(tmp_path / "adapter", dropout=0.5)
    base = write_base_dir(TINY_GPT_OSS, tmp_path / "base")
    findings, _ = findings_left_in_training_mode(monkeypatch, config_path, base)
    assert codes(findings) and set(codes(findings)) == {"AG601"}


def test_same_dropout_adapter_in_eval_mode_passes(tmp_path):
    config_path = save_adapter(tmp_path / "adapter", dropout=0.5)
    base = write_base_dir(TINY_GPT_OSS, tmp_path / "base")
    assert gpt_oss_findings(config_path, read(config_path), base_model=base)[0] == []


def test_findings_point_at_the_adapter_config(tmp_path, monkeypatch):
    config_path = save_adapter(tmp_path / "adapter", dropout=0.5)
    base = write_base_dir(TINY_GPT_OSS, tmp_path / "base")
    findings, _ = findings_left_in_training_mode(monkeypatch, config_path, base)
    assert {f.path for f in findings} == {str(config_path)}


def test_unexpected_exception_becomes_a_one_line_AG602(tmp_path):
    base = write_base_dir(dict(TINY_GPT_OSS, hidden_size="wide"), tmp_path / "base")
    findings, lines = gpt_oss_findings(None, None, base_model=base)
    assert codes(findings) == ["AG602"] and "\n" not in findings[0].message
    assert findings[0].message.startswith("gpt-oss regression failed unexpectedly: ")
