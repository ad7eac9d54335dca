"""What mlx-vlm 0.7.10's loader (``apply_lora_layers``) really does with edited adapters.

The facts of reference adapter-formats.md §2.3, checked on copies of files written by mlx-vlm's
own save code: its loader loads with ``strict=False``, so most damage is silent.
"""

from __future__ import annotations

import pytest
import vlm_writers
from vlm_writers import Q0


@pytest.fixture
def load_corrupted(vlm_corpus, tmp_path):
    def load(corruption: str) -> vlm_writers.Outcome:
        sample = vlm_corpus[vlm_writers.CORRUPTIONS[corruption][0]]
        adapter_dir = vlm_writers.corrupted_copy(sample, corruption, tmp_path / corruption)
        return vlm_writers.load_sample(sample, adapter_dir)

    return load


def test_a_rank_edited_in_the_config_is_silently_replaced_by_the_file_arrays(load_corrupted):
    outcome = load_corrupted("rank_edited_4_to_8")

    assert outcome.loaded
    assert outcome.unbound_keys == ()
    assert outcome.reproduces_live()


def test_a_renamed_tensor_binds_nowhere_and_the_output_is_wrong(load_corrupted):
    outcome = load_corrupted("tensor_renamed")

    assert outcome.loaded
    assert outcome.unbound_keys == (f"{Q0}.A",)
    assert not outcome.reproduces_live()


def test_mlx_lm_tensor_names_bind_nowhere_without_an_error(load_corrupted):
    outcome = load_corrupted("mlx_lm_prefix")

    assert outcome.loaded
    assert len(outcome.unbound_keys) == 8
    assert all(key.startswith("model.layers.") for key in outcome.unbound_keys)
    assert not outcome.reproduces_live()


def test_block_relative_keys_are_an_attribute_error(load_corrupted):
    outcome = load_corrupted("mlx_lm_relative_keys")

    assert outcome.error_type == "AttributeError"
    assert outcome.error == "'LanguageModel' object has no attribute 'self_attn'"


def test_a_config_without_rank_or_lora_parameters_is_refused(load_corrupted):
    outcome = load_corrupted("no_lora_parameters")

    assert (outcome.error_type, outcome.error) == ("ValueError", "The adapter does not have lora params in the config")


def test_a_legacy_config_with_an_extra_key_still_loads(load_corrupted):
    assert load_corrupted("legacy_extra_key").reproduces_live()


def test_a_peft_adapter_is_refused_by_mlx_vlm(peft_corpus):
    # PEFT's folder holds adapter_model.safetensors, which mlx-vlm does not look for.
    outcome = vlm_writers.vlm_load(peft_corpus["plain_qv"].adapter_dir)

    assert outcome.error_type == "FileNotFoundError"
