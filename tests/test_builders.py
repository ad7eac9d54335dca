"""The shared builders make real adapters: stock mlx-lm reloads them to the live outputs."""

from __future__ import annotations

import json

import builders
import pytest

from adapter_guard.infer import infer_adapter

LAYOUTS = {
    "llama-attention": builders.llama_attention_adapter,
    "llama-all-layers": builders.llama_all_layers_adapter,
    "gpt-oss-experts": builders.gpt_oss_experts_adapter,
    "dora": builders.dora_adapter,
    "embedding": builders.embedding_adapter,
}


def _header_shapes(path):
    from safetensors import safe_open

    with safe_open(str(path), "numpy") as f:
        return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_stock_reload_reproduces_live_logits(tmp_path, layout):
    built = LAYOUTS[layout](tmp_path / "adapter")
    tokens = builders.probe_tokens(built.base_config)

    live = builders.reference_logits(built.model, tokens)
    reloaded = builders.fresh_reload_logits(built.base_config, built.adapter_dir, tokens)

    assert builders.max_abs_diff(live, reloaded) < 1e-4


@pytest.mark.parametrize("layout", LAYOUTS)
def test_adapter_changes_the_output(tmp_path, layout):
    built = LAYOUTS[layout](tmp_path / "adapter")
    tokens = builders.probe_tokens(built.base_config)

    base = builders.reference_logits(builders.make_base(built.base_config), tokens)
    live = builders.reference_logits(built.model, tokens)

    assert builders.max_abs_diff(base, live) > 1e-2


@pytest.mark.parametrize("layout", LAYOUTS)
def test_saved_file_holds_only_adapter_tensors(tmp_path, layout):
    built = LAYOUTS[layout](tmp_path / "adapter")
    names = _header_shapes(built.adapter_dir / "adapters.safetensors")

    assert sorted(names) == built.tensor_names
    assert {name.rsplit(".", 1)[-1] for name in names} <= {"lora_a", "lora_b", "m"}


def test_dora_file_carries_magnitudes(tmp_path):
    built = builders.dora_adapter(tmp_path / "adapter")

    assert any(name.endswith(".m") for name in built.tensor_names)


def test_gpt_oss_experts_use_the_current_switch_layout(tmp_path):
    built = builders.gpt_oss_experts_adapter(tmp_path / "adapter")
    shape = infer_adapter(_header_shapes(built.adapter_dir / "adapters.safetensors"))

    assert {entry.rank.layout for entry in shape.modules.values()} == {"switch"}
    assert shape.rank == 4


def test_config_is_written_like_mlx_lm_lora(tmp_path):
    built = builders.llama_attention_adapter(tmp_path / "adapter")
    text = (built.adapter_dir / "adapter_config.json").read_text()
    config = json.loads(text)

    assert list(config) == sorted(config)
    assert text.startswith('{\n    "')
    assert config["lora_parameters"] == {"rank": 4, "scale": 2.0, "dropout": 0.1, "keys": builders.ATTENTION_KEYS}
    assert config["num_layers"] == 2
    assert config["fine_tune_type"] == "lora"
    assert {"adapter_path", "batch_size", "iters", "learning_rate", "seed"} <= set(config)


def test_config_omits_keys_when_none_were_set(tmp_path):
    built = builders.llama_all_layers_adapter(tmp_path / "adapter")
    config = json.loads((built.adapter_dir / "adapter_config.json").read_text())

    assert "keys" not in config["lora_parameters"]
    assert config["num_layers"] == -1


def test_legacy_switch_file_has_the_old_layout(tmp_path):
    adapter_dir = builders.legacy_switch_adapter(tmp_path / "adapter", rank=4)
    shape = infer_adapter(_header_shapes(adapter_dir / "adapters.safetensors"))

    assert {entry.rank.layout for entry in shape.modules.values()} == {"legacy-switch"}
    assert shape.rank == 4


def test_vlm_prefixed_file_names_the_language_tower(tmp_path):
    adapter_dir = builders.vlm_prefixed_adapter(tmp_path / "adapter")
    shape = infer_adapter(_header_shapes(adapter_dir / "adapters.safetensors"))

    assert set(shape.layer_indices) == {"language_model.model.layers"}
    assert shape.relative_keys == set(builders.ATTENTION_KEYS)


def test_base_dir_holds_only_the_config(tmp_path):
    config = builders.tiny_gpt_oss_config()
    base_dir = builders.write_base_dir(config, tmp_path / "base")

    assert [p.name for p in base_dir.iterdir()] == ["config.json"]
    assert json.loads((base_dir / "config.json").read_text()) == config
