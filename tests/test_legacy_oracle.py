"""What current mlx-lm (0.32.x) does with files the old writers really wrote (reference §3.3).

The samples are the recorded output of mlx-lm 0.18.2's CLI and the recreated mlx-examples
``adapters.npz``; ``live`` is what the old loader made of each file. These pin the facts the
legacy rules rely on, including that renaming ``lora_layers`` to ``num_layers`` is a repair the
current loader accepts with the old outputs.
"""

from __future__ import annotations

import json
import shutil

import legacy_writers
import numpy as np
import pytest


@pytest.fixture
def copy_of(legacy_corpus, tmp_path):
    def copy(name: str, **config_changes):
        sample = legacy_corpus[name]
        adapter_dir = tmp_path / name
        shutil.copytree(sample.adapter_dir, adapter_dir)
        if config_changes:
            path = adapter_dir / "adapter_config.json"
            path.write_text(json.dumps({**json.loads(path.read_text()), **config_changes}, indent=4))
        return sample, adapter_dir

    return copy


@pytest.mark.parametrize("name", ["mlx_lm_0_18_lora", "mlx_lm_0_18_dora"])
def test_current_mlx_lm_crashes_on_lora_layers(copy_of, name):
    _, adapter_dir = copy_of(name)

    with pytest.raises(AttributeError, match="has no attribute 'num_layers'"):
        legacy_writers.mlx_lm_reload_logits(adapter_dir)


def test_num_layers_equal_to_lora_layers_reloads_to_the_old_loaders_output(copy_of):
    sample, adapter_dir = copy_of("mlx_lm_0_18_lora", num_layers=2)

    reloaded = legacy_writers.mlx_lm_reload_logits(adapter_dir)

    assert np.max(np.abs(reloaded - sample.live)) < 1e-4


def test_use_dora_without_fine_tune_type_is_ignored_and_m_is_rejected(copy_of):
    _, adapter_dir = copy_of("mlx_lm_0_18_dora", num_layers=2)

    with pytest.raises(ValueError, match=r"incompatible tensors:[\s\S]*self_attn\.q_proj\.m: not an adapter parameter"):
        legacy_writers.mlx_lm_reload_logits(adapter_dir)


def test_fine_tune_type_dora_reloads_to_the_old_loaders_output(copy_of):
    sample, adapter_dir = copy_of("mlx_lm_0_18_dora", num_layers=2, fine_tune_type="dora")

    reloaded = legacy_writers.mlx_lm_reload_logits(adapter_dir)

    assert np.max(np.abs(reloaded - sample.live)) < 1e-4


@pytest.mark.parametrize("name", ["mlx_lm_0_5_npz", "mlx_examples_lora_npz"])
def test_adapters_npz_without_a_config_is_file_not_found(copy_of, name):
    _, adapter_dir = copy_of(name)

    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        legacy_writers.mlx_lm_reload_logits(adapter_dir)


def test_adapters_npz_is_not_read_even_with_a_config(copy_of):
    _, adapter_dir = copy_of("mlx_examples_lora_npz")
    config = {"num_layers": 2, "lora_parameters": {"rank": 8, "scale": 20.0, "dropout": 0.0}}
    (adapter_dir / "adapter_config.json").write_text(json.dumps(config))

    with pytest.raises(RuntimeError, match=r"\[load_safetensors\] Failed to open file .*adapters\.safetensors"):
        legacy_writers.mlx_lm_reload_logits(adapter_dir)


def test_adapters_npz_converted_to_safetensors_with_a_config_reloads_to_the_live_output(copy_of):
    import mlx.core as mx

    sample, adapter_dir = copy_of("mlx_examples_lora_npz")
    mx.save_safetensors(str(adapter_dir / "adapters.safetensors"), dict(mx.load(str(adapter_dir / "adapters.npz"))))
    params = {"rank": 8, "scale": 20.0, "dropout": 0.0, "keys": ["self_attn.q_proj", "self_attn.v_proj"]}
    config = {"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": params}
    (adapter_dir / "adapter_config.json").write_text(json.dumps(config))

    reloaded = legacy_writers.mlx_lm_reload_logits(adapter_dir)

    assert np.max(np.abs(reloaded - sample.live)) < 1e-4


def test_mlx_lm_0_5_npz_converted_with_its_loader_defaults_reloads_to_its_output(copy_of):
    """mlx-lm < 0.6 rebuilt every adapter with its defaults: rank 8, and scale 10 * alpha 16 / rank 8 = 20.

    (Its LoRALinear multiplied the configured scale by alpha / r; current mlx-lm uses scale as is.)
    """
    import mlx.core as mx

    sample, adapter_dir = copy_of("mlx_lm_0_5_npz")
    mx.save_safetensors(str(adapter_dir / "adapters.safetensors"), dict(mx.load(str(adapter_dir / "adapters.npz"))))
    params = {"rank": 8, "scale": 20.0, "dropout": 0.0, "keys": ["self_attn.q_proj", "self_attn.v_proj"]}
    config = {"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": params}
    (adapter_dir / "adapter_config.json").write_text(json.dumps(config))

    reloaded = legacy_writers.mlx_lm_reload_logits(adapter_dir)

    assert np.max(np.abs(reloaded - sample.live)) < 1e-4
