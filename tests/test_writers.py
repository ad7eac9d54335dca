"""The corpora written by the real writers are what the reference says they are.

Files and tensor shapes per sample (reference adapter-formats.md §1.8, §2, §3), and the real
loaders load every clean sample on a fresh base and reproduce the live model's output.
"""

from __future__ import annotations

import json

import peft_writers
import pytest
from peft_writers import L0, L1


def header_shapes(path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(path), "numpy") as f:
        return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}


def peft_shapes(sample) -> dict[str, tuple[int, ...]]:
    return header_shapes(sample.adapter_dir / peft_writers.WEIGHTS_NAME)


def lora_pair(module: str, r: int, width_in: int, width_out: int) -> dict[str, tuple[int, ...]]:
    return {f"{module}.lora_A.weight": (r, width_in), f"{module}.lora_B.weight": (width_out, r)}


def qv_pairs(r: int, layers=(L0, L1)) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for layer in layers:
        for proj in ("q_proj", "v_proj"):
            shapes.update(lora_pair(f"{layer}.{proj}", r, 64, 64))
    return shapes


# -- PEFT: files ---------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in peft_writers.CASES if n not in ("bin_fallback", "named_subfolder")])
def test_save_pretrained_writes_config_safetensors_and_a_model_card(peft_corpus, name):
    files = sorted(p.name for p in peft_corpus[name].adapter_dir.iterdir())

    assert files == ["README.md", "adapter_config.json", "adapter_model.safetensors"]


def test_bin_fallback_writes_a_pickle_and_no_safetensors(peft_corpus):
    files = sorted(p.name for p in peft_corpus["bin_fallback"].adapter_dir.iterdir())

    assert files == ["README.md", "adapter_config.json", "adapter_model.bin"]


def test_a_named_adapter_lands_in_a_subfolder_of_its_name(peft_corpus):
    sample = peft_corpus["named_subfolder"]

    assert sample.adapter_dir.name == "other"
    assert sorted(p.name for p in sample.adapter_dir.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]


def test_safetensors_metadata_is_format_pt(peft_corpus):
    from safetensors import safe_open

    with safe_open(str(peft_corpus["plain_qv"].adapter_dir / peft_writers.WEIGHTS_NAME), "numpy") as f:
        assert f.metadata() == {"format": "pt"}


# The keys peft 0.21.2 writes for a default LoRA (reference §1.4 lists these 41; its count says 43).
PEFT_0_21_2_KEYS = """
alora_invocation_tokens alpha_pattern arrow_config auto_mapping base_model_name_or_path bias corda_config
ensure_weight_tying eva_config exclude_modules fan_in_fan_out inference_mode init_lora_weights kasa_config
layer_replication layers_pattern layers_to_transform loftq_config lora_alpha lora_bias lora_dropout
lora_ga_config megatron_config megatron_core modules_to_save monteclora_config peft_type peft_version
qalora_group_size r rank_pattern revision target_modules target_parameters task_type trainable_token_indices
use_bdlora use_dora use_qalora use_rslora velora_config
""".split()


def test_the_default_config_has_the_keys_of_peft_0_21_2(peft_corpus):
    config = peft_writers.read_config(peft_corpus["plain_qv"].adapter_dir)

    assert sorted(config) == sorted(PEFT_0_21_2_KEYS)
    assert (config["peft_type"], config["r"], config["lora_alpha"], config["peft_version"]) == ("LORA", 8, 16, "0.21.2")
    assert sorted(config["target_modules"]) == ["q_proj", "v_proj"]
    assert config["inference_mode"] is True


def test_a_bin_fallback_holds_the_same_keys_as_the_safetensors_sample(peft_corpus):
    import torch

    state = torch.load(peft_corpus["bin_fallback"].adapter_dir / peft_writers.BIN_WEIGHTS_NAME, weights_only=True)

    assert {k: tuple(v.shape) for k, v in state.items()} == peft_shapes(peft_corpus["plain_qv"])


# -- PEFT: tensor shapes -------------------------------------------------------------


def test_plain_qv_shapes(peft_corpus):
    assert peft_shapes(peft_corpus["plain_qv"]) == qv_pairs(8)


def test_rank_pattern_gives_each_module_its_own_rank(peft_corpus):
    shapes = peft_shapes(peft_corpus["rank_alpha_pattern"])

    assert shapes == {
        **lora_pair(f"{L0}.q_proj", 4, 64, 64),
        **lora_pair(f"{L1}.q_proj", 4, 64, 64),
        **lora_pair(f"{L0}.v_proj", 8, 64, 64),
        **lora_pair(f"{L1}.v_proj", 2, 64, 64),
        **lora_pair(f"{L0}.k_proj", 8, 64, 64),
        **lora_pair(f"{L1}.k_proj", 8, 64, 64),
    }


def test_dora_adds_one_magnitude_per_output_feature(peft_corpus):
    shapes = peft_shapes(peft_corpus["dora"])

    magnitudes = {f"{layer}.{proj}.lora_magnitude_vector": (64,) for layer in (L0, L1) for proj in ("q_proj", "v_proj")}
    assert shapes == {**qv_pairs(8), **magnitudes}


def test_rslora_shapes(peft_corpus):
    assert peft_shapes(peft_corpus["rslora"]) == qv_pairs(16)


def test_embedding_lora_is_bare_parameters_plus_the_full_base_embedding(peft_corpus):
    shapes = peft_shapes(peft_corpus["embedding"])

    emb = "base_model.model.model.embed_tokens"
    q_pairs = {**lora_pair(f"{L0}.q_proj", 8, 64, 64), **lora_pair(f"{L1}.q_proj", 8, 64, 64)}
    assert shapes == {
        f"{emb}.lora_embedding_A": (8, 128),
        f"{emb}.lora_embedding_B": (64, 8),
        f"{emb}.base_layer.weight": (128, 64),
        **q_pairs,
    }


def test_modules_to_save_is_stored_under_the_plain_module_name(peft_corpus):
    shapes = peft_shapes(peft_corpus["modules_to_save_lm_head"])

    assert shapes == {**qv_pairs(8), "base_model.model.lm_head.weight": (128, 64)}


@pytest.mark.parametrize(
    ("name", "layers"), [("regex_target", (L1,)), ("layers_to_transform", (L0,)), ("layers_pattern", (L1,))]
)
def test_layer_selection_keeps_only_the_selected_layers(peft_corpus, name, layers):
    assert peft_shapes(peft_corpus[name]) == qv_pairs(8, layers)


def test_a_regex_target_is_saved_as_a_string(peft_corpus):
    config = peft_writers.read_config(peft_corpus["regex_target"].adapter_dir)

    assert config["target_modules"] == r".*\.layers\.1\.self_attn\.(q|v)_proj"


def test_all_linear_is_saved_expanded_without_the_output_head(peft_corpus):
    sample = peft_corpus["all_linear"]
    config = peft_writers.read_config(sample.adapter_dir)

    projections = {"self_attn.q_proj": (64, 64), "self_attn.k_proj": (64, 64), "self_attn.v_proj": (64, 64),
                   "self_attn.o_proj": (64, 64), "mlp.gate_proj": (64, 128), "mlp.up_proj": (64, 128),
                   "mlp.down_proj": (128, 64)}  # fmt: skip
    expected = {}
    for n in (0, 1):
        for proj, (width_in, width_out) in projections.items():
            expected.update(lora_pair(f"base_model.model.model.layers.{n}.{proj}", 2, width_in, width_out))
    assert peft_shapes(sample) == expected
    assert sorted(config["target_modules"]) == sorted(f"model.layers.{n}.{p}" for n in (0, 1) for p in projections)


def test_trainable_tokens_store_one_delta_row_per_index(peft_corpus):
    shapes = peft_shapes(peft_corpus["trainable_tokens"])

    delta = "base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta"
    assert shapes == {**qv_pairs(8), delta: (3, 64)}


GPT2_ATTN = [f"base_model.model.transformer.h.{n}.attn.c_attn" for n in (0, 1)]


def test_gpt2_conv1d_keeps_the_linear_orientation(peft_corpus):
    shapes = peft_shapes(peft_corpus["gpt2_conv1d_fan_in_fan_out"])

    assert shapes == {k: v for m in GPT2_ATTN for k, v in lora_pair(m, 4, 64, 192).items()}


def test_gpt2_bias_lora_only_adds_the_adapted_modules_biases(peft_corpus):
    shapes = peft_shapes(peft_corpus["gpt2_bias_lora_only"])

    assert {k: v for k, v in shapes.items() if "lora_" not in k} == {f"{m}.base_layer.bias": (192,) for m in GPT2_ATTN}


def test_gpt2_bias_all_adds_every_bias_in_the_model(peft_corpus):
    shapes = peft_shapes(peft_corpus["gpt2_bias_all"])

    biases = {k for k in shapes if "lora_" not in k}
    assert "base_model.model.transformer.ln_f.bias" in biases
    assert "base_model.model.transformer.h.1.ln_1.bias" in biases
    assert "base_model.model.transformer.h.0.mlp.c_fc.bias" in biases
    assert all(k.endswith(".bias") for k in biases)
    assert len(biases) == 2 * 6 + 1  # per block: ln_1, c_attn, c_proj, ln_2, c_fc, mlp.c_proj; plus ln_f


def test_gpt2_lora_bias_adds_a_bias_to_lora_B(peft_corpus):
    shapes = peft_shapes(peft_corpus["gpt2_lora_bias"])

    assert {k: v for k, v in shapes.items() if k.endswith(".bias")} == {f"{m}.lora_B.bias": (192,) for m in GPT2_ATTN}


def test_conv_and_embedding_dora_magnitude_shapes(peft_corpus):
    sample = peft_corpus["custom_conv_emb_dora"]
    shapes = peft_shapes(sample)
    m = "base_model.model"

    assert shapes == {
        f"{m}.conv2d.lora_A.weight": (4, 3, 3, 3), f"{m}.conv2d.lora_B.weight": (16, 4, 1, 1),
        f"{m}.conv2d.lora_magnitude_vector": (1, 16, 1, 1),
        f"{m}.conv1d.lora_A.weight": (4, 4, 5), f"{m}.conv1d.lora_B.weight": (6, 4, 1),
        f"{m}.conv1d.lora_magnitude_vector": (1, 6, 1),
        f"{m}.linear.lora_A.weight": (4, 10), f"{m}.linear.lora_B.weight": (20, 4),
        f"{m}.linear.lora_magnitude_vector": (20,),
        f"{m}.embedding.lora_embedding_A": (4, 30), f"{m}.embedding.lora_embedding_B": (12, 4),
        f"{m}.embedding.lora_magnitude_vector": (12,),
    }  # fmt: skip


def test_a_non_transformers_base_writes_a_null_task_type_and_an_auto_mapping(peft_corpus):
    config = peft_writers.read_config(peft_corpus["custom_conv_emb_dora"].adapter_dir)

    assert config["task_type"] is None
    assert config["auto_mapping"]["base_model_class"] == "ConvEmbNet"


def test_write_base_config_gives_the_llama_shapes(tmp_path):
    path = peft_writers.write_base_config(peft_writers.LLAMA, tmp_path)
    config = json.loads(path.read_text())

    sizes = (config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"], config["vocab_size"])
    assert sizes == (64, 128, 2, 128)


# -- PEFT: the real loader reproduces the live model ----------------------------------


@pytest.mark.parametrize("name", peft_writers.CASES)
def test_peft_reloads_every_sample_on_a_fresh_base_to_the_live_output(peft_corpus, name):
    outcome = peft_writers.load_sample(peft_corpus[name])

    assert outcome.silent
    assert outcome.unexpected_keys == ()
    assert outcome.reproduces_live()


@pytest.mark.parametrize("name", peft_writers.CASES)
def test_every_peft_sample_changes_the_base_output(peft_corpus, name):
    import numpy as np

    sample = peft_corpus[name]
    base_output = peft_writers.probe_output(sample.base_factory(), sample.base)

    assert np.max(np.abs(base_output - sample.live)) > 1e-3


# -- mlx-vlm 0.7.10: files, keys, shapes ----------------------------------------------

VLM_MODULES = [f"language_model.model.layers.{n}.self_attn.{p}" for n in (0, 1) for p in ("q_proj", "v_proj")]


def vlm_shapes(sample) -> dict[str, tuple[int, ...]]:
    import vlm_writers

    return header_shapes(sample.adapter_dir / vlm_writers.WEIGHTS_NAME)


def read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["lora", "dora", "full", "legacy_current_writer"])
def test_mlx_vlm_writes_adapters_safetensors_and_its_config(vlm_corpus, name):
    files = sorted(p.name for p in vlm_corpus[name].adapter_dir.iterdir())

    assert files == ["adapter_config.json", "adapters.safetensors"]


@pytest.mark.parametrize("name", ["lora", "dora"])
def test_mlx_vlm_new_schema_config(vlm_corpus, name):
    config = read_json(vlm_corpus[name].adapter_dir / "adapter_config.json")

    assert sorted(config) == ["fine_tune_type", "lora_parameters", "num_layers"]
    assert (config["fine_tune_type"], config["num_layers"]) == (name, -1)
    params = {k: v for k, v in config["lora_parameters"].items() if k != "keys"}
    assert params == {"rank": 4, "dropout": 0.0, "scale": 2.0}
    assert sorted(config["lora_parameters"]["keys"]) == sorted(VLM_MODULES)


def test_mlx_vlm_config_is_written_with_sorted_keys_and_indent_2(vlm_corpus):
    text = (vlm_corpus["lora"].adapter_dir / "adapter_config.json").read_text(encoding="utf-8")

    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True)


def test_mlx_vlm_lora_keys_are_full_paths_in_mlx_orientation(vlm_corpus):
    shapes = vlm_shapes(vlm_corpus["lora"])

    assert shapes == {f"{m}.lora_{ab}": ((64, 4) if ab == "a" else (4, 64)) for m in VLM_MODULES for ab in "ab"}


def test_mlx_vlm_dora_adds_m_per_output_feature(vlm_corpus):
    shapes = vlm_shapes(vlm_corpus["dora"])

    assert {k: v for k, v in shapes.items() if k.endswith(".m")} == {f"{m}.m": (64,) for m in VLM_MODULES}
    assert len(shapes) == 3 * len(VLM_MODULES)


def test_mlx_vlm_full_fine_tune_saves_every_weight_and_a_one_key_config(vlm_corpus):
    import vlm_writers
    from mlx.utils import tree_flatten

    sample = vlm_corpus["full"]
    base_shapes = {k: tuple(v.shape) for k, v in tree_flatten(vlm_writers.make_base().parameters())}

    assert read_json(sample.adapter_dir / "adapter_config.json") == {"fine_tune_type": "full"}
    assert vlm_shapes(sample) == base_shapes


def test_mlx_vlm_legacy_schema_from_the_current_writer(vlm_corpus):
    sample = vlm_corpus["legacy_current_writer"]

    assert read_json(sample.adapter_dir / "adapter_config.json") == {"alpha": 8.0, "dropout": 0.0, "rank": 4}
    assert vlm_shapes(sample) == {f"{m}.{ab}": ((64, 4) if ab == "A" else (4, 64)) for m in VLM_MODULES for ab in "AB"}


def test_write_vlm_base_config_gives_the_text_shapes(tmp_path):
    import vlm_writers

    text = read_json(vlm_writers.write_base_config(tmp_path))["text_config"]

    assert (text["hidden_size"], text["intermediate_size"], text["vocab_size"]) == (64, 128, 128)


@pytest.mark.parametrize("name", ["lora", "dora", "full", "legacy_current_writer"])
def test_mlx_vlm_reloads_every_sample_on_a_fresh_base_to_the_live_output(vlm_corpus, name):
    import vlm_writers

    outcome = vlm_writers.load_sample(vlm_corpus[name])

    assert outcome.unbound_keys == ()
    assert outcome.reproduces_live()


@pytest.mark.parametrize("name", ["lora", "dora", "full", "legacy_current_writer"])
def test_every_mlx_vlm_sample_changes_the_base_output(vlm_corpus, name):
    import numpy as np
    import vlm_writers

    base_output = vlm_writers.probe_output(vlm_writers.make_base())

    assert np.max(np.abs(base_output - vlm_corpus[name].live)) > 1e-3


# -- legacy: mlx-lm 0.18.2, mlx-vlm 0.5.0, mlx-examples adapters.npz -------------------

LEGACY_MODULES = [f"model.layers.{n}.self_attn.{p}" for n in (0, 1) for p in ("q_proj", "v_proj")]
# builders.tiny_llama_config(2): hidden 32, 4 heads, 2 kv heads, so v_proj is 32 -> 16
LEGACY_OUT = {"q_proj": 32, "v_proj": 16}


def legacy_lora_shapes(rank: int) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for m in LEGACY_MODULES:
        shapes[f"{m}.lora_a"] = (32, rank)
        shapes[f"{m}.lora_b"] = (rank, LEGACY_OUT[m.rsplit(".", 1)[1]])
    return shapes


def test_mlx_lm_0_18_writes_lora_layers_and_use_dora(legacy_corpus):
    config = read_json(legacy_corpus["mlx_lm_0_18_lora"].adapter_dir / "adapter_config.json")

    assert (config["lora_layers"], config["use_dora"]) == (2, False)
    assert config["lora_parameters"] == {"rank": 8, "alpha": 16, "dropout": 0.0, "scale": 10.0}
    assert "num_layers" not in config and "fine_tune_type" not in config


def test_mlx_lm_0_18_lora_shapes(legacy_corpus):
    shapes = header_shapes(legacy_corpus["mlx_lm_0_18_lora"].adapter_dir / "adapters.safetensors")

    assert shapes == legacy_lora_shapes(8)


def test_mlx_lm_0_18_dora_adds_m_and_says_use_dora(legacy_corpus):
    sample = legacy_corpus["mlx_lm_0_18_dora"]
    shapes = header_shapes(sample.adapter_dir / "adapters.safetensors")

    assert read_json(sample.adapter_dir / "adapter_config.json")["use_dora"] is True
    magnitudes = {f"{m}.m": (LEGACY_OUT[m.rsplit(".", 1)[1]],) for m in LEGACY_MODULES}
    assert shapes == {**legacy_lora_shapes(8), **magnitudes}


def test_mlx_vlm_0_5_writes_exactly_rank_alpha_dropout_unsorted(legacy_corpus):
    text = (legacy_corpus["mlx_vlm_0_5_legacy"].adapter_dir / "adapter_config.json").read_text(encoding="utf-8")

    assert list(json.loads(text)) == ["rank", "alpha", "dropout"]
    assert json.loads(text) == {"rank": 4, "alpha": 8.0, "dropout": 0.0}


def test_mlx_vlm_0_5_keys_are_full_paths_with_A_and_B(legacy_corpus):
    shapes = header_shapes(legacy_corpus["mlx_vlm_0_5_legacy"].adapter_dir / "adapters.safetensors")

    assert shapes == {f"{m}.{ab}": ((64, 4) if ab == "A" else (4, 64)) for m in VLM_MODULES for ab in "AB"}


@pytest.mark.parametrize("name", ["mlx_lm_0_5_npz", "mlx_examples_lora_npz"])
def test_adapters_npz_has_no_config_and_rank_8_factors(legacy_corpus, name):
    import numpy as np

    sample = legacy_corpus[name]
    with np.load(sample.adapter_dir / "adapters.npz") as npz:
        shapes = {k: npz[k].shape for k in npz.files}

    assert sorted(p.name for p in sample.adapter_dir.iterdir()) == ["adapters.npz"]
    assert shapes == legacy_lora_shapes(8)


def test_mlx_examples_reload_reproduces_the_live_output(legacy_corpus):
    import legacy_writers
    import numpy as np

    sample = legacy_corpus["mlx_examples_lora_npz"]

    assert np.max(np.abs(legacy_writers.mlx_examples_reload_logits(sample.adapter_dir) - sample.live)) < 1e-4


def test_mlx_vlm_0_5_file_reloads_in_mlx_vlm_0_7_10_to_the_old_live_output(legacy_corpus):
    import vlm_writers

    sample = legacy_corpus["mlx_vlm_0_5_legacy"]

    assert vlm_writers.vlm_load(sample.adapter_dir, live=sample.live).reproduces_live()


@pytest.mark.parametrize("name", ["mlx_lm_0_18_lora", "mlx_lm_0_18_dora", "mlx_lm_0_5_npz", "mlx_examples_lora_npz"])
def test_every_legacy_llama_sample_changes_the_base_output(legacy_corpus, name):
    import builders
    import legacy_writers
    import numpy as np

    config = legacy_writers.llama_config()
    base = np.array(builders.reference_logits(builders.make_base(config), builders.probe_tokens(config)))

    assert np.max(np.abs(base - legacy_corpus[name].live)) > 1e-3


def test_copy_with_base_config_puts_config_json_beside_the_adapter(peft_corpus, tmp_path):
    adapter_dir = peft_writers.copy_with_base_config(peft_corpus["gpt2_lora_bias"], tmp_path / "adapter")
    config = json.loads((adapter_dir / "config.json").read_text())

    assert (config["model_type"], config["n_embd"], config["vocab_size"]) == ("gpt2", 64, 128)
    assert (adapter_dir / peft_writers.WEIGHTS_NAME).is_file()


def test_written_adapters_lists_every_sample_with_its_format(written_adapters):
    import legacy_writers
    import vlm_writers

    expected = len(peft_writers.CASES) + len(vlm_writers.CASES) + len(legacy_writers.CASES)
    formats = {fmt for fmt, _ in written_adapters.values()}

    assert len(written_adapters) == expected
    assert all(path.is_dir() for _, path in written_adapters.values())
    assert formats == {"peft-lora", "mlx-vlm", "mlx-vlm-legacy", "mlx-lm-pre-0.19", "adapters-npz"}


def test_save_pretrained_warns_only_for_the_embedding_and_the_lora_bias_samples(peft_corpus):
    warned = {name for name, sample in peft_corpus.items() if sample.save_warnings}

    assert warned == {"embedding", "gpt2_lora_bias"}


def test_targeting_the_embedding_turns_on_save_embedding_layers(peft_corpus):
    (message,) = peft_corpus["embedding"].save_warnings

    assert message.startswith("Setting `save_embedding_layers` to `True`")


def test_peft_mistakes_a_legitimate_lora_B_bias_for_an_ungathered_shard(peft_corpus):
    (message,) = peft_corpus["gpt2_lora_bias"].save_warnings

    assert "2 LoRA tensor(s) have invalid shape" in message
    assert "c_attn.lora_B.bias:(192,)" in message
