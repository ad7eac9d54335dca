"""The repairs real saves need, as pure rules: a wrong rank the tensors settle, mirrors
kept in step with the fields they mirror, and keys where mlx-lm's default set would
wrap modules that have no tensors.

Shapes follow mlx-lm's layouts (the format reference): Linear lora_a (in, r) and
lora_b (r, out); LoRASwitchLinear lora_a (E, r, in) and lora_b (E, out, r).
"""

from __future__ import annotations

from adapter_guard.formats.mlx_lm import run_rules
from adapter_guard.formats.shared import Inputs
from adapter_guard.infer import infer_adapter
from adapter_guard.registry import SAFE, UNSAFE

EXPERTS = ("mlp.experts.gate_proj", "mlp.experts.up_proj", "mlp.experts.down_proj")
#: The modules of a gpt-oss layer whose weights are matrices or expert stacks (mlx-lm names).
GPT_OSS_LAYER = frozenset(
    {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.router", *EXPERTS}
)
LLAMA_LAYER = frozenset(
    {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
     "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}
)


def expert_tensors(layers=range(4), rank=4, experts=4, hidden=96, intermediate=32):
    widths = {"mlp.experts.gate_proj": (hidden, intermediate), "mlp.experts.up_proj": (hidden, intermediate),
              "mlp.experts.down_proj": (intermediate, hidden)}
    tensors = {}
    for i in layers:
        for key, (inp, out) in widths.items():
            tensors[f"model.layers.{i}.{key}.lora_a"] = (experts, rank, inp)
            tensors[f"model.layers.{i}.{key}.lora_b"] = (experts, out, rank)
    return tensors


def linear_tensors(layers=range(4), keys=("self_attn.q_proj", "self_attn.v_proj"), rank=4, width=32):
    tensors = {}
    for i in layers:
        for key in keys:
            tensors[f"model.layers.{i}.{key}.lora_a"] = (width, rank)
            tensors[f"model.layers.{i}.{key}.lora_b"] = (rank, width)
    return tensors


def pre_fix_unsloth_trainer_config(rank=96):
    """What unsloth's MLXTrainer.save_model wrote before #679 for gpt-oss expert LoRA:
    the input width read as the rank, in lora_parameters and in the top-level mirror."""
    return {
        "fine_tune_type": "lora",
        "peft_type": "LORA",
        "base_model_name_or_path": "unsloth/gpt-oss-tiny",
        "num_layers": 4,
        "lora_parameters": {"rank": rank, "scale": 2.0, "dropout": 0.0},
        "rank": rank,
        "scale": 2.0,
        "dropout": 0.0,
    }


def run(config, tensors, base_modules=None):
    inputs = Inputs(config, infer_adapter(tensors), 4, "base/config.json, --base-model")
    inputs.base_modules = base_modules
    return run_rules(inputs, "adapter_config.json")


def only(found, code):
    [finding] = [f for f in found if f.code == code]
    return finding


def codes(found):
    return sorted(f.code for f in found)


# -- a rank the tensors contradict ---------------------------------------------------------


def test_the_pre_fix_unsloth_rank_96_is_a_safe_fix_that_writes_the_mirror_too():
    found = run(pre_fix_unsloth_trainer_config(), expert_tensors())
    assert codes(found) == ["AG203"]  # the mirror agrees with the wrong value: no separate AG403
    fix = only(found, "AG203").fix
    assert fix.applicability == SAFE
    assert fix.sets == ((("lora_parameters", "rank"), 4), (("rank",), 4))


def test_a_rank_that_reaches_a_module_width_stays_an_unsafe_fix():
    # Rank 32 over modules 32 wide both ways is more than full rank: what a transposed layout shows.
    config = {"fine_tune_type": "lora", "num_layers": -1, "lora_parameters": {"rank": 8, "scale": 2.0, "dropout": 0.0}}
    fix = only(run(config, linear_tensors(rank=32)), "AG203").fix
    assert fix.applicability == UNSAFE


def test_modules_that_disagree_on_the_rank_get_no_rank_fix():
    tensors = {**linear_tensors(keys=("self_attn.q_proj",), rank=4), **linear_tensors(keys=("self_attn.v_proj",), rank=8)}
    config = {"fine_tune_type": "lora", "num_layers": -1, "lora_parameters": {"rank": 16, "scale": 2.0, "dropout": 0.0}}
    found = run(config, tensors)
    assert "AG106" in codes(found) and "AG203" not in codes(found)


# -- mirrors in step --------------------------------------------------------------------------


def test_a_missing_rank_is_written_with_its_mirror_when_the_mirror_disagrees():
    config = pre_fix_unsloth_trainer_config()
    del config["lora_parameters"]["rank"]
    fix = only(run(config, expert_tensors()), "AG202").fix
    assert fix.sets == ((("lora_parameters", "rank"), 4), (("rank",), 4))


def test_lora_parameters_rebuilt_from_mirrors_corrects_a_wrong_rank_mirror():
    config = pre_fix_unsloth_trainer_config()
    del config["lora_parameters"]
    fix = only(run(config, expert_tensors()), "AG201").fix
    assert fix.sets[0] == (("lora_parameters",), {"rank": 4, "scale": 2.0, "dropout": 0.0})
    assert fix.sets[1:] == ((("rank",), 4),)


def test_a_rank_mirror_that_disagrees_with_a_proven_lora_parameters_rank_is_fixed():
    config = pre_fix_unsloth_trainer_config()
    config["lora_parameters"]["rank"] = 4
    finding = only(run(config, expert_tensors()), "AG403")
    assert (finding.fix.applicability, finding.fix.sets) == (SAFE, ((("rank",), 4),))


def test_a_scale_mirror_that_disagrees_is_reported_without_a_fix():
    config = pre_fix_unsloth_trainer_config(rank=4)
    config["scale"] = 3.0
    assert only(run(config, expert_tensors()), "AG403").fix is None


# -- keys from the tensors ------------------------------------------------------------------


def test_default_keys_over_a_base_with_more_linear_modules_get_keys_from_the_tensors():
    config = pre_fix_unsloth_trainer_config(rank=4)
    finding = only(run(config, expert_tensors(), {"model.layers": GPT_OSS_LAYER}), "AG401")
    assert finding.fix.applicability == SAFE
    assert finding.fix.sets == ((("lora_parameters", "keys"), sorted(EXPERTS)),)
    assert "`mlp.router`" in finding.message and "base/config.json" in finding.message


def test_default_keys_that_cover_every_linear_module_are_silent():
    config = {"fine_tune_type": "lora", "num_layers": -1, "lora_parameters": {"rank": 4, "scale": 2.0, "dropout": 0.0}}
    assert run(config, linear_tensors(keys=sorted(LLAMA_LAYER)), {"model.layers": LLAMA_LAYER}) == []


def test_without_base_weights_nothing_is_claimed_about_the_default_set():
    config = {"fine_tune_type": "lora", "num_layers": -1, "lora_parameters": {"rank": 4, "scale": 2.0, "dropout": 0.0}}
    assert run(config, linear_tensors(), None) == []


def test_base_weights_named_differently_from_the_adapter_prove_nothing():
    # A Hugging Face gpt-oss checkpoint stores experts as one fused gate_up_proj, which
    # mlx-lm splits on load: the adapter's modules are not all among its names.
    hf_names = frozenset({"self_attn.q_proj", "self_attn.k_proj", "mlp.router", "mlp.experts.gate_up_proj"})
    config = pre_fix_unsloth_trainer_config(rank=4)
    assert run(config, expert_tensors(), {"model.layers": hf_names}) == []


def test_module_paths_are_explicit_topology_and_get_no_keys():
    config = pre_fix_unsloth_trainer_config(rank=4)
    config["unsloth_mlx_lora_module_paths"] = [f"model.layers.{i}.{k}" for i in range(4) for k in EXPERTS]
    assert "AG401" not in codes(run(config, expert_tensors(), {"model.layers": GPT_OSS_LAYER}))


def test_lora_parameters_rebuilt_from_mirrors_gets_keys_when_the_default_set_is_wider():
    config = pre_fix_unsloth_trainer_config(rank=4)
    del config["lora_parameters"]
    fix = only(run(config, expert_tensors(), {"model.layers": GPT_OSS_LAYER}), "AG201").fix
    assert fix.sets[0][1]["keys"] == sorted(EXPERTS)


def test_a_rank_above_only_the_smaller_width_is_still_plausible():
    # What the stock trainer writes for gpt-oss with the default key set: rank 8 on the
    # router, which is 32 wide in and 4 wide out (one logit per expert).
    tensors = {f"model.layers.{i}.mlp.router.lora_a": (32, 8) for i in range(2)}
    tensors |= {f"model.layers.{i}.mlp.router.lora_b": (8, 4) for i in range(2)}
    config = {"fine_tune_type": "lora", "num_layers": -1, "lora_parameters": {"rank": 9, "scale": 2.0, "dropout": 0.0}}
    assert only(run(config, tensors), "AG203").fix.applicability == SAFE
