"""The rules as pure functions: a config plus what the tensors prove, in; findings out."""

import pytest

from adapter_guard.formats.mlx_lm import run_rules
from adapter_guard.formats.shared import Inputs
from adapter_guard.infer import infer_adapter
from adapter_guard.registry import RULES, SAFE, UNSAFE, enabled_codes


def linear_tensors(layers=(2, 3), keys=("self_attn.q_proj", "self_attn.v_proj"), rank=8, prefix="model.layers", m=False):
    tensors = {}
    for i in layers:
        for key in keys:
            tensors[f"{prefix}.{i}.{key}.lora_a"] = (64, rank)
            tensors[f"{prefix}.{i}.{key}.lora_b"] = (rank, 64)
            if m:
                tensors[f"{prefix}.{i}.{key}.m"] = (64,)
    return tensors


def complete_config(**overrides):
    config = {
        "fine_tune_type": "lora",
        "num_layers": 2,
        "lora_parameters": {"rank": 8, "scale": 20.0, "dropout": 0.0},
    }
    config.update(overrides)
    return config


def findings(config, tensors=None, total_layers=4):
    shape = infer_adapter(tensors if tensors is not None else linear_tensors())
    return run_rules(Inputs(config, shape, total_layers, "base/config.json"), "adapter_config.json")


def codes(found):
    return [f.code for f in found]


def only(found, code):
    [finding] = [f for f in found if f.code == code]
    return finding


def test_complete_config_has_no_findings():
    assert findings(complete_config()) == []


def test_config_without_mirrors_or_keys_is_not_a_finding():
    # mlx_lm.lora writes neither top-level mirrors nor keys unless asked.
    assert findings(complete_config(num_layers=-1), linear_tensors(layers=(0, 1, 2, 3))) == []


def test_missing_rank_is_fixed_with_the_inferred_rank():
    config = complete_config(lora_parameters={"scale": 20.0, "dropout": 0.0})
    finding = only(findings(config), "AG202")
    assert finding.fix.applicability == SAFE
    assert finding.fix.sets == ((("lora_parameters", "rank"), 8),)


def test_missing_rank_with_contradicted_modules_is_reported_without_a_fix():
    tensors = linear_tensors()
    tensors["model.layers.2.self_attn.q_proj.lora_b"] = (4, 64)
    found = findings(complete_config(lora_parameters={"scale": 20.0, "dropout": 0.0}), tensors)
    assert "AG105" in codes(found)
    assert only(found, "AG202").fix is None


def test_wrong_rank_is_an_error_with_an_unsafe_fix():
    finding = only(findings(complete_config(lora_parameters={"rank": 16, "scale": 20.0, "dropout": 0.0})), "AG203")
    assert finding.fix.applicability == UNSAFE
    assert finding.fix.sets == ((("lora_parameters", "rank"), 8),)


def test_missing_scale_copies_the_top_level_mirror():
    config = complete_config(scale=2.0, lora_parameters={"rank": 8, "dropout": 0.0})
    finding = only(findings(config), "AG204")
    assert (finding.fix.applicability, finding.fix.sets) == (SAFE, ((("lora_parameters", "scale"), 2.0),))


def test_missing_scale_from_alpha_is_only_an_unsafe_fix():
    config = complete_config(lora_parameters={"rank": 8, "dropout": 0.0, "alpha": 16})
    finding = only(findings(config), "AG204")
    assert finding.fix.applicability == UNSAFE
    assert finding.fix.sets == ((("lora_parameters", "scale"), 2.0),)
    assert "alpha / rank" in finding.message


def test_missing_scale_without_evidence_is_never_invented():
    finding = only(findings(complete_config(lora_parameters={"rank": 8, "dropout": 0.0})), "AG204")
    assert finding.fix is None
    assert "lora_parameters.scale" in finding.message


def test_missing_dropout_defaults_to_zero_and_says_why():
    finding = only(findings(complete_config(lora_parameters={"rank": 8, "scale": 20.0})), "AG205")
    assert finding.fix.sets == ((("lora_parameters", "dropout"), 0.0),)
    assert "no effect at inference" in finding.message


def test_missing_dropout_prefers_the_mirror():
    config = complete_config(dropout=0.1, lora_parameters={"rank": 8, "scale": 20.0})
    assert only(findings(config), "AG205").fix.sets == ((("lora_parameters", "dropout"), 0.1),)


def test_missing_lora_parameters_writes_what_is_proven_and_reports_the_rest():
    config = {"fine_tune_type": "lora", "num_layers": 2}
    found = findings(config)
    fix = only(found, "AG201").fix
    assert fix.sets == ((("lora_parameters",), {"rank": 8, "dropout": 0.0}),)
    assert only(found, "AG204").fix is None


@pytest.mark.parametrize(
    ("layers", "total", "expected"),
    [((2, 3), 4, 2), ((0, 1, 2, 3), None, -1), ((0, 1, 2, 3), 4, -1)],
)
def test_missing_num_layers_is_inferred_when_proven(layers, total, expected):
    config = complete_config()
    del config["num_layers"]
    shape = infer_adapter(linear_tensors(layers=layers))
    finding = only(run_rules(Inputs(config, shape, total), "p"), "AG301")
    assert finding.fix.sets == ((("num_layers",), expected),)


def test_missing_num_layers_without_the_base_layer_count_is_not_guessed():
    config = complete_config()
    del config["num_layers"]
    finding = only(findings(config, total_layers=None), "AG301")
    assert finding.fix is None
    assert "--base-model" in finding.message


def test_non_suffix_layers_without_explicit_paths_are_an_error():
    config = complete_config()
    del config["num_layers"]
    assert "AG303" in codes(findings(config, linear_tensors(layers=(1, 3))))


def test_full_path_keys_make_num_layers_irrelevant():
    keys = ["model.layers.1.self_attn.q_proj", "model.layers.3.self_attn.q_proj"]
    config = complete_config(lora_parameters={"rank": 8, "scale": 20.0, "dropout": 0.0, "keys": keys})
    del config["num_layers"]
    finding = only(findings(config, linear_tensors(layers=(1, 3), keys=("self_attn.q_proj",))), "AG301")
    assert finding.fix.sets == ((("num_layers",), -1),)


def test_num_layers_too_small_is_an_error():
    assert "AG302" in codes(findings(complete_config(num_layers=1)))


def test_num_layers_too_small_is_caught_without_the_base_config():
    assert "AG302" in codes(findings(complete_config(num_layers=1), total_layers=None))


def test_missing_fine_tune_type_is_inferred_from_m():
    config = complete_config(lora_parameters={"rank": 8, "scale": 20.0, "dropout": 0.0})
    del config["fine_tune_type"]
    finding = only(findings(config, linear_tensors(m=True)), "AG304")
    assert finding.fix.sets == ((("fine_tune_type",), "dora"),)


def test_fine_tune_type_contradicting_the_tensors_is_an_error():
    assert "AG305" in codes(findings(complete_config(), linear_tensors(m=True)))
    assert "AG305" in codes(findings(complete_config(fine_tune_type="dora")))


def test_full_fine_tune_needs_no_lora_parameters():
    assert findings({"fine_tune_type": "full", "lora_parameters": None, "num_layers": 4}) == []


def test_modules_outside_layers_need_keys_and_get_them():
    tensors = {**linear_tensors(), "model.embed_tokens.lora_a": (100, 8), "model.embed_tokens.lora_b": (8, 64)}
    finding = only(findings(complete_config(), tensors), "AG401")
    assert finding.fix.sets == (
        (("lora_parameters", "keys"), ["self_attn.q_proj", "self_attn.v_proj", "model.embed_tokens"]),
    )


def test_explicit_keys_are_never_rewritten():
    config = complete_config(lora_parameters={"rank": 8, "scale": 20.0, "dropout": 0.0, "keys": ["self_attn.q_proj"]})
    finding = only(findings(config), "AG402")
    assert finding.fix is None
    assert "self_attn.v_proj" in finding.message


def test_explicit_empty_keys_are_kept_and_reported():
    config = complete_config(lora_parameters={"rank": 8, "scale": 20.0, "dropout": 0.0, "keys": []})
    assert only(findings(config), "AG402").fix is None


def test_explicit_module_paths_must_cover_the_tensors():
    config = complete_config(unsloth_mlx_lora_module_paths=["model.layers.2.self_attn.q_proj"])
    assert "AG402" in codes(findings(config))


def test_mirrors_must_agree():
    finding = only(findings(complete_config(scale=2.0)), "AG403")
    assert "20.0" in finding.message and "2.0" in finding.message


@pytest.mark.parametrize(
    ("key", "value"),
    [("rank", "8"), ("rank", 0), ("rank", True), ("scale", [1.0]), ("dropout", 1.0), ("dropout", -0.1)],
)
def test_wrong_types_and_ranges_are_invalid_values(key, value):
    config = complete_config()
    config["lora_parameters"][key] = value
    assert "AG004" in codes(findings(config))


def test_string_num_layers_and_list_lora_parameters_are_invalid_values():
    assert "AG004" in codes(findings(complete_config(num_layers="2")))
    assert "AG004" in codes(findings(complete_config(lora_parameters=[8])))


def test_tensor_problems_each_have_their_own_code():
    tensors = linear_tensors()
    tensors["model.layers.2.mlp.up_proj.lora_a"] = (64, 8)  # unpaired
    tensors["model.layers.2.self_attn.q_proj.weight"] = (64, 64)  # not an adapter tensor
    found = codes(findings(complete_config(), tensors))
    assert {"AG103", "AG104"} <= set(found)


def test_mixed_ranks_are_reported():
    tensors = {**linear_tensors(layers=(2,), rank=8), **linear_tensors(layers=(3,), rank=4)}
    assert "AG106" in codes(findings(complete_config(), tensors))


def test_select_and_ignore_resolve_by_most_specific_prefix():
    assert enabled_codes(["AG2"], ["AG204"]) == {c for c in RULES if c.startswith("AG2") and c != "AG204"}
    assert enabled_codes(None, ["AG2"]) & {"AG202"} == set()
    assert enabled_codes(["AG204"], ["AG2"]) == {"AG204"}
