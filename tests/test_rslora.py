"""rsLoRA: wherever adapter-guard computes a scale from alpha, ``use_rslora`` means alpha / sqrt(r).

The oracle is PEFT's own scaling on the real rsLoRA sample (r = 16, lora_alpha = 16).
"""

from __future__ import annotations

import peft_writers

from adapter_guard.formats.mlx_lm import run_rules
from adapter_guard.formats.shared import Inputs
from adapter_guard.infer import infer_adapter


def peft_scaling(sample) -> float:
    """The scaling PEFT itself gives layer 0's q_proj after loading the sample."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(sample.base_factory(), str(sample.adapter_dir))
    return model.base_model.model.model.layers[0].self_attn.q_proj.scaling["default"]


def unsafe_scale_fix(config: dict) -> float:
    shape = infer_adapter({"model.layers.0.self_attn.q_proj.lora_a": (64, 16), "model.layers.0.self_attn.q_proj.lora_b": (16, 64)})
    [finding] = [f for f in run_rules(Inputs(config, shape), "adapter_config.json") if f.code == "AG204"]
    [(_, value)] = finding.fix.sets
    return value


def test_the_unsafe_scale_fix_of_an_rslora_config_is_the_scale_peft_uses(peft_corpus):
    config = peft_writers.read_config(peft_corpus["rslora"].adapter_dir)
    mlx_config = {"fine_tune_type": "lora", "num_layers": -1, "use_rslora": config["use_rslora"],
                  "lora_parameters": {"rank": config["r"], "alpha": config["lora_alpha"], "dropout": 0.0}}  # fmt: skip

    assert unsafe_scale_fix(mlx_config) == peft_scaling(peft_corpus["rslora"]) == 4.0


def test_without_rslora_the_unsafe_scale_fix_is_alpha_over_r(peft_corpus):
    config = peft_writers.read_config(peft_corpus["plain_qv"].adapter_dir)
    mlx_config = {"fine_tune_type": "lora", "num_layers": -1,
                  "lora_parameters": {"rank": 16, "alpha": 16, "dropout": 0.0}}  # fmt: skip

    assert unsafe_scale_fix(mlx_config) == 1.0
    assert peft_scaling(peft_corpus["plain_qv"]) == config["lora_alpha"] / config["r"]
