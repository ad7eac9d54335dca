"""save_adapters: a complete config and an adapter file that stock mlx-lm reloads faithfully."""

from __future__ import annotations

import json

import builders
import mlx.core as mx
import pytest
from safetensors import safe_open

from adapter_guard.mlx import save as save_module
from adapter_guard.mlx.save import SaveError, save_adapters

LLAMA = builders.tiny_llama_config()
GPT_OSS = builders.tiny_gpt_oss_config()

CASES = builders.live_layouts()


def _tensor_names(adapter_dir):
    with safe_open(str(adapter_dir / "adapters.safetensors"), "numpy") as f:
        return set(f.keys())


def _config(adapter_dir):
    return json.loads((adapter_dir / "adapter_config.json").read_text())


@pytest.mark.parametrize("case", CASES)
def test_stock_reload_reproduces_the_live_outputs(tmp_path, case):
    base_config, kwargs = CASES[case]
    model = builders.make_live_adapter(base_config, **kwargs)
    tokens = builders.probe_tokens(base_config)

    save_adapters(model, tmp_path)
    reloaded = builders.fresh_reload_logits(base_config, tmp_path, tokens)

    assert builders.max_abs_diff(builders.reference_logits(model, tokens), reloaded) < 1e-4


@pytest.mark.parametrize("case", CASES)
def test_file_holds_exactly_the_adapter_tensors(tmp_path, case):
    base_config, kwargs = CASES[case]
    model = builders.make_live_adapter(base_config, **kwargs)

    save_adapters(model, tmp_path)

    assert _tensor_names(tmp_path) == set(builders.adapter_tensors(model))


def test_config_is_complete(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2, keys=builders.ATTENTION_KEYS, dropout=0.1, scale=2.0)
    save_adapters(model, tmp_path)
    config = _config(tmp_path)

    assert config["lora_parameters"] == {"rank": 4, "scale": 2.0, "dropout": 0.1, "keys": builders.ATTENTION_KEYS}
    assert (config["rank"], config["scale"], config["dropout"]) == (4, 2.0, 0.1)
    assert (config["num_layers"], config["fine_tune_type"]) == (2, "lora")
    assert config["unsloth_mlx_lora_module_paths"] == [
        "model.layers.2.self_attn.q_proj",
        "model.layers.2.self_attn.v_proj",
        "model.layers.3.self_attn.q_proj",
        "model.layers.3.self_attn.v_proj",
    ]


def test_config_is_written_sorted_with_four_space_indent(tmp_path):
    save_adapters(builders.make_live_adapter(LLAMA, num_layers=2), tmp_path)
    text = (tmp_path / "adapter_config.json").read_text()

    assert text == json.dumps(json.loads(text), indent=4, sort_keys=True) + "\n"


def test_dora_config_says_dora(tmp_path):
    save_adapters(builders.make_live_adapter(LLAMA, num_layers=-1, keys=builders.ATTENTION_KEYS, dora=True), tmp_path)

    assert _config(tmp_path)["fine_tune_type"] == "dora"
    assert any(name.endswith(".m") for name in _tensor_names(tmp_path))


def test_caller_fields_are_kept(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2)
    save_adapters(model, tmp_path, {"model": "org/base", "batch_size": 4, "base_model_name_or_path": "org/base"})
    config = _config(tmp_path)

    assert (config["model"], config["batch_size"], config["base_model_name_or_path"]) == ("org/base", 4, "org/base")


def test_caller_keys_are_never_overwritten(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2, keys=builders.ATTENTION_KEYS)
    full_paths = ["model.layers.2.self_attn.q_proj", "model.layers.2.self_attn.v_proj",
                  "model.layers.3.self_attn.q_proj", "model.layers.3.self_attn.v_proj"]
    save_adapters(model, tmp_path, {"lora_parameters": {"keys": full_paths}, "num_layers": -1})
    config = _config(tmp_path)

    assert config["lora_parameters"]["keys"] == full_paths
    assert config["num_layers"] == -1


def test_caller_module_paths_are_never_overwritten(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2)
    save_adapters(model, tmp_path, {"unsloth_mlx_lora_module_paths": ["model.layers.3.self_attn.q_proj"]})

    assert _config(tmp_path)["unsloth_mlx_lora_module_paths"] == ["model.layers.3.self_attn.q_proj"]


def test_caller_empty_module_paths_stay_empty(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2)
    save_adapters(model, tmp_path, {"unsloth_mlx_lora_module_paths": []})
    config = _config(tmp_path)

    assert config["unsloth_mlx_lora_module_paths"] == []
    assert config["lora_parameters"]["rank"] == 4


def test_a_caller_scale_contradicting_the_modules_is_refused(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2, scale=2.0)

    with pytest.raises(SaveError, match="scale 20.0, but the live modules have 2.0"):
        save_adapters(model, tmp_path, {"lora_parameters": {"rank": 4, "scale": 20.0, "dropout": 0.0}})
    assert list(tmp_path.iterdir()) == []


def test_a_stale_top_level_mirror_is_refused(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2, dropout=0.1)

    with pytest.raises(SaveError, match="dropout 0.0"):
        save_adapters(model, tmp_path, {"dropout": 0.0})


def test_caller_keys_that_miss_a_module_are_refused(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2, keys=builders.ATTENTION_KEYS)

    with pytest.raises(SaveError, match="would not recreate 2 module"):
        save_adapters(model, tmp_path, {"lora_parameters": {"keys": ["self_attn.q_proj"]}})
    assert list(tmp_path.iterdir()) == []


def _set_rank(model, suffix, rank):
    for path, module in model.named_modules():
        if path.endswith(suffix) and "lora_a" in module:
            module.lora_a, module.lora_b = mx.zeros((32, rank)), mx.zeros((rank, module.lora_b.shape[1]))


def test_mixed_ranks_are_refused(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2)
    _set_rank(model, "q_proj", 8)

    with pytest.raises(SaveError, match="cannot tell rank: modules differ in rank"):
        save_adapters(model, tmp_path)


def test_a_caller_rank_must_fit_every_module(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2)
    _set_rank(model, "q_proj", 8)

    with pytest.raises(SaveError, match="has rank 4, but mlx-lm rebuilds every module with rank 8"):
        save_adapters(model, tmp_path, {"unsloth_mlx_lora_module_paths": ["model.layers.3.self_attn.q_proj"]})


def test_a_contradicted_module_is_refused(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2)
    dict(model.named_modules())["model.layers.3.self_attn.v_proj"].lora_b = mx.zeros((5, 16))

    with pytest.raises(SaveError, match="model.layers.3.self_attn.v_proj: lora_a .* has rank 4"):
        save_adapters(model, tmp_path)


def test_values_the_selected_modules_cannot_tell_come_from_the_caller(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2, scale=2.0)
    caller = {
        "unsloth_mlx_lora_module_paths": ["vision_tower.proj"],
        "lora_parameters": {"rank": 4, "scale": 3.0, "dropout": 0.0},
    }
    save_adapters(model, tmp_path, caller)

    assert _config(tmp_path)["lora_parameters"]["scale"] == 3.0


def test_a_config_that_is_not_json_is_refused_before_any_write(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2)

    with pytest.raises(SaveError, match="cannot be written as JSON"):
        save_adapters(model, tmp_path, {"adapter_path": tmp_path})
    assert list(tmp_path.iterdir()) == []


def test_non_finite_tensors_are_refused(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2)
    dict(model.named_modules())["model.layers.3.self_attn.q_proj"].lora_b = mx.full((4, 32), mx.nan)

    with pytest.raises(SaveError, match="non-finite values .* model.layers.3.self_attn.q_proj.lora_b"):
        save_adapters(model, tmp_path)


def test_a_model_without_lora_is_refused(tmp_path):
    with pytest.raises(SaveError, match="no LoRA or DoRA modules"):
        save_adapters(builders.make_base(LLAMA), tmp_path)


def test_every_file_is_written_atomically(tmp_path, monkeypatch):
    import adapter_guard.atomic

    written = []
    real = adapter_guard.atomic.atomic_write

    def spy(path, data):
        written.append(path.name)
        real(path, data)

    monkeypatch.setattr(adapter_guard.atomic, "atomic_write", spy)
    save_adapters(builders.make_live_adapter(LLAMA, num_layers=2), tmp_path)

    assert written == ["adapters.safetensors", "adapter_fingerprint.json", "adapter_config.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(written)


def test_the_fingerprint_lives_beside_the_config_not_in_it(tmp_path):
    save_adapters(builders.make_live_adapter(LLAMA, num_layers=2), tmp_path)

    assert (tmp_path / "adapter_fingerprint.json").is_file()
    assert not any("fingerprint" in key for key in _config(tmp_path))


def test_build_config_does_not_touch_the_disk(tmp_path):
    config = save_module.build_config(builders.make_live_adapter(LLAMA, num_layers=2))

    assert config["lora_parameters"]["rank"] == 4
    assert list(tmp_path.iterdir()) == []
