"""What ``PeftModel.from_pretrained`` (peft 0.21.2) really does with each corrupted adapter.

These are the facts the PEFT rules rely on (reference adapter-formats.md §1.6-1.7), checked
against the real loader on copies of real ``save_pretrained`` output. If PEFT changes its
behaviour, a test here fails before a rule starts giving wrong advice.
"""

from __future__ import annotations

import peft_writers
import pytest
from peft_writers import L0, L1, LM_HEAD


@pytest.fixture
def load_corrupted(peft_corpus, tmp_path):
    def load(corruption: str) -> peft_writers.Outcome:
        sample = peft_corpus[peft_writers.CORRUPTIONS[corruption].sample]
        adapter_dir = peft_writers.corrupted_copy(sample, corruption, tmp_path / corruption)
        return peft_writers.load_sample(sample, adapter_dir)

    return load


def _in_memory(key: str) -> str:
    """The loader's name for an on-disk key: the adapter name comes back before the leaf."""
    head, leaf = key.rsplit(".", 1)
    return f"{head}.default.{leaf}"


# -- hard errors -------------------------------------------------------------------

SIZE_MISMATCHES = {
    "r_edited_8_to_16": f"{_in_memory(f'{L0}.q_proj.lora_A.weight')}: copying a param with shape "
    "torch.Size([8, 64]) from checkpoint, the shape in current model is torch.Size([16, 64])",
    "rank_pattern_removed": f"{_in_memory(f'{L0}.q_proj.lora_A.weight')}: copying a param with shape "
    "torch.Size([4, 64]) from checkpoint, the shape in current model is torch.Size([8, 64])",
    "lora_B_transposed": f"{_in_memory(f'{L0}.q_proj.lora_B.weight')}: copying a param with shape "
    "torch.Size([8, 64]) from checkpoint, the shape in current model is torch.Size([64, 8])",
    "mixed_ranks_without_rank_pattern": f"{_in_memory(f'{L0}.q_proj.lora_A.weight')}: copying a param with "
    "shape torch.Size([4, 64]) from checkpoint, the shape in current model is torch.Size([8, 64])",
    "modules_to_save_resized_vocab": "base_model.model.lm_head.modules_to_save.default.weight: copying a param "
    "with shape torch.Size([136, 64]) from checkpoint, the shape in current model is torch.Size([128, 64])",
}


@pytest.mark.parametrize("corruption", SIZE_MISMATCHES)
def test_a_shape_that_disagrees_with_the_config_is_a_size_mismatch_error(load_corrupted, corruption):
    outcome = load_corrupted(corruption)

    assert outcome.error_type == "RuntimeError"
    assert f"size mismatch for {SIZE_MISMATCHES[corruption]}" in outcome.error


def test_a_transposed_lora_B_is_reported_on_that_tensor_only(load_corrupted):
    outcome = load_corrupted("lora_B_transposed")

    assert outcome.error.count("size mismatch for") == 1


def test_a_bare_target_name_as_a_string_is_a_fullmatch_regex_that_matches_nothing(load_corrupted):
    outcome = load_corrupted("target_modules_bare_name_as_regex")

    assert outcome.error_type == "NoMatchingPeftModuleError"
    assert outcome.error.startswith("Target modules q_proj not found in the base model.")


def test_targets_that_match_nothing_are_an_error(load_corrupted):
    outcome = load_corrupted("target_modules_match_nothing")

    assert outcome.error_type == "NoMatchingPeftModuleError"
    assert "{'nope_proj'} not found in the base model" in outcome.error


def test_modules_to_save_without_its_tensor_is_a_bare_key_error(load_corrupted):
    outcome = load_corrupted("modules_to_save_without_tensor")

    assert (outcome.error_type, outcome.error) == ("KeyError", repr(LM_HEAD))


@pytest.mark.parametrize(
    ("corruption", "message"),
    [("peft_type_missing", "'peft_type'"), ("peft_type_lower_case", "'lora'"), ("mlx_lm_style_config", "'peft_type'")],
)
def test_peft_type_missing_or_lower_case_or_an_mlx_config_is_a_key_error(load_corrupted, corruption, message):
    outcome = load_corrupted(corruption)

    assert (outcome.error_type, outcome.error) == ("KeyError", message)


def test_a_zero_byte_weights_file_is_a_safetensors_error(load_corrupted):
    outcome = load_corrupted("weights_zero_bytes")

    assert outcome.error_type == "SafetensorError"
    assert "header too small" in outcome.error


def test_a_local_folder_without_weights_is_taken_for_a_hub_repo_id(load_corrupted):
    outcome = load_corrupted("weights_absent")

    assert outcome.error_type == "HFValidationError"


# -- loads, with the "Found missing adapter keys" warning ---------------------------

MODULES = [f"{layer}.{proj}" for layer in (L0, L1) for proj in ("q_proj", "v_proj")]
LORA_PAIRS = [_in_memory(f"{m}.lora_{ab}.weight") for m in MODULES for ab in "AB"]

MISSING = {
    "tensor_renamed": [_in_memory(f"{L0}.q_proj.lora_A.weight")],
    "target_modules_extended": [_in_memory(f"{layer}.k_proj.lora_{ab}.weight") for layer in (L0, L1) for ab in "AB"],
    "layers_to_transform_changed": [
        _in_memory(f"{L1}.{p}.lora_{ab}.weight") for p in ("q_proj", "v_proj") for ab in "AB"
    ],
    "use_dora_false_to_true": [f"{m}.lora_magnitude_vector.default.weight" for m in MODULES],
    "weights_without_tensors": LORA_PAIRS,
    "prefix_stripped": LORA_PAIRS,
}


@pytest.mark.parametrize("corruption", MISSING)
def test_adapter_tensors_the_config_expects_but_the_file_lacks_are_a_missing_keys_warning(load_corrupted, corruption):
    outcome = load_corrupted(corruption)

    assert outcome.loaded
    assert sorted(outcome.missing_keys) == sorted(MISSING[corruption])
    assert outcome.warnings == ()


def test_a_missing_target_gets_a_no_op_adapter(load_corrupted):
    assert load_corrupted("target_modules_extended").reproduces_live()


@pytest.mark.parametrize("corruption", ["tensor_renamed", "layers_to_transform_changed", "weights_without_tensors"])
def test_a_missing_tensor_changes_the_output(load_corrupted, corruption):
    assert not load_corrupted(corruption).reproduces_live()


def test_dora_switched_on_rederives_magnitudes_and_changes_the_output(load_corrupted):
    assert not load_corrupted("use_dora_false_to_true").reproduces_live()


# -- loads silently: no error, no warning --------------------------------------------

IGNORED = {
    "target_modules_reduced": [f"{layer}.v_proj.lora_{ab}.weight" for layer in (L0, L1) for ab in "AB"],
    "target_modules_regex_subset": [f"{layer}.v_proj.lora_{ab}.weight" for layer in (L0, L1) for ab in "AB"],
    "use_dora_true_to_false": [f"{m}.lora_magnitude_vector.weight" for m in MODULES],
    "extra_tensor_wrong_shape": [f"{L0}.k_proj.lora_A.weight"],
    "tensor_renamed": [f"{L0}.q_proj.lora_X.weight"],
    "layers_to_transform_changed": [f"{L0}.{p}.lora_{ab}.weight" for p in ("q_proj", "v_proj") for ab in "AB"],
}


@pytest.mark.parametrize("corruption", IGNORED)
def test_tensors_outside_the_configured_modules_are_dropped_without_a_word(load_corrupted, corruption):
    outcome = load_corrupted(corruption)

    assert outcome.loaded
    assert sorted(outcome.unexpected_keys) == sorted(IGNORED[corruption])
    assert outcome.warnings == ()


@pytest.mark.parametrize(
    "corruption", ["target_modules_reduced", "target_modules_regex_subset", "use_dora_true_to_false", "lora_alpha_edited"]
)
def test_a_silent_corruption_still_changes_the_output(load_corrupted, corruption):
    outcome = load_corrupted(corruption)

    assert outcome.silent
    assert not outcome.reproduces_live()


def test_an_extra_tensor_of_any_shape_changes_nothing(load_corrupted):
    outcome = load_corrupted("extra_tensor_wrong_shape")

    assert outcome.silent
    assert outcome.reproduces_live()


def test_an_unknown_config_key_is_dropped_with_a_warning(load_corrupted):
    outcome = load_corrupted("unknown_config_key")

    assert outcome.reproduces_live()
    assert len(outcome.warnings) == 1
    assert outcome.warnings[0].startswith("Unexpected keyword arguments ['from_the_future'] for class LoraConfig")


# -- written by save_pretrained, refused by from_pretrained ---------------------------


def test_save_pretrained_sorts_rank_pattern_so_an_order_dependent_pattern_fails_to_reload(tmp_path):
    sample = peft_writers.build_sample("rank_pattern_order_sensitive", tmp_path / "adapter")

    saved = peft_writers.read_config(sample.adapter_dir)["rank_pattern"]
    outcome = peft_writers.load_sample(sample)

    # In memory "q_proj" came first and won for every layer (A is rank 4); on disk it comes second.
    assert list(saved) == ["layers.0.self_attn.q_proj", "q_proj"]
    assert outcome.error_type == "RuntimeError"
    assert (
        f"size mismatch for {_in_memory(f'{L0}.q_proj.lora_A.weight')}: copying a param with shape "
        "torch.Size([4, 64]) from checkpoint, the shape in current model is torch.Size([2, 64])"
    ) in outcome.error


# -- config values PEFT refuses, and the ones it corrects with a warning ---------------

REFUSED_VALUES = {
    "r_zero": ("ValueError", "`r` should be a positive integer value but the value passed is 0"),
    "bias_bogus": ("NotImplementedError", "Requested bias: bogus, is not implemented."),
    "task_type_bogus": ("ValueError", "Invalid task type: 'FOO'."),
}


@pytest.mark.parametrize("corruption", REFUSED_VALUES)
def test_a_config_value_outside_its_domain_is_refused(load_corrupted, corruption):
    outcome = load_corrupted(corruption)
    error_type, message = REFUSED_VALUES[corruption]

    assert outcome.error_type == error_type
    assert outcome.error.startswith(message)


WARNED_AND_LOADED = {
    "rank_pattern_key_matches_nothing": (
        "The following rank_pattern keys did not match any targeted module and were ignored: ['nope_proj']."
    ),
    "fan_in_fan_out_false_on_conv1d": (
        "fan_in_fan_out is set to False but the target module is `Conv1D`. Setting fan_in_fan_out to True."
    ),
}


@pytest.mark.parametrize("corruption", WARNED_AND_LOADED)
def test_a_harmless_config_slip_is_a_warning_and_the_adapter_still_works(load_corrupted, corruption):
    outcome = load_corrupted(corruption)

    assert outcome.warnings == (WARNED_AND_LOADED[corruption],)
    assert outcome.reproduces_live()
