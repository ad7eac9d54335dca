"""The same regression on transformers' gpt-oss eager attention, when torch is installed.

Upstream's crash lived in transformers' eager path, so when torch and
transformers happen to be importable, the built-in run also decodes the
scenarios there: a tiny ``GptOssForCausalLM`` from :data:`TINY_GPT_OSS`'s
shapes, ``attn_implementation="eager"``, seeded, with transformers' own cache
(``DynamicCache`` with sliding layers) against a recompute without a cache.

torch is never a dependency of adapter-guard; without it this module is not
used. Results come back as the same :class:`ScenarioResult` objects, under
scenario names prefixed ``transformers-eager/``.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
from dataclasses import replace
from typing import Any

from .gpt_oss import TINY_GPT_OSS, TINY_GPT_OSS_SEED, Scenario, ScenarioResult, _one_line, scenarios

PREFIX = "transformers-eager/"

#: Both paths run the same float32 kernels in a different order; as in MLX.
TOLERANCE = 1e-4


def transformers_available() -> bool:
    """Whether torch and transformers with gpt-oss are importable (without importing them)."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers.models.gpt_oss"))
    except (ImportError, ValueError):
        return False


def build_transformers_gpt_oss(config: dict[str, Any] | None = None, seed: int = TINY_GPT_OSS_SEED):
    """A seeded tiny ``GptOssForCausalLM`` with eager attention, in eval mode."""
    import torch
    from transformers import GptOssConfig, GptOssForCausalLM

    config = config or TINY_GPT_OSS
    keys = (
        "vocab_size", "hidden_size", "intermediate_size", "head_dim", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "num_local_experts", "num_experts_per_tok", "sliding_window", "layer_types",
        "rms_norm_eps",
    )
    # transformers' default init (std 0.02) makes near-uniform attention on a
    # model this narrow, which would hide window bugs; MLX's init is ~1/sqrt(hidden).
    std = config["hidden_size"] ** -0.5
    hf_config = GptOssConfig(**{k: config[k] for k in keys if k in config}, initializer_range=std)
    hf_config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return GptOssForCausalLM(hf_config).to(torch.float32).eval()


def run_transformers_scenario(model, scenario: Scenario, *, tolerance: float = TOLERANCE, seed: int = 0) -> ScenarioResult:
    """Greedy-decode one scenario with transformers' cache against recomputes without one."""
    import torch

    result = ScenarioResult(replace(scenario, name=PREFIX + scenario.name), tolerance)
    generator = torch.Generator().manual_seed(seed + scenario.prefill)
    sequence = torch.randint(0, model.config.vocab_size, (1, scenario.prefill), generator=generator)
    step_input, past = sequence, None
    # transformers 5.24 renamed ``past_key_values`` (argument and output) to ``cache``.
    cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    with torch.no_grad():
        for step in range(1, scenario.new_tokens + 1):
            shapes = f"input {tuple(step_input.shape)}, sequence length {sequence.shape[1]}"
            try:
                out = model(input_ids=step_input, use_cache=True, **{cache_name: past})
                full = model(input_ids=sequence, use_cache=False).logits[0, -1]
            except Exception as exc:  # any exception is the finding
                result.error = f"at step {step} ({shapes}): {_one_line(exc)}"
                return result
            past, cached = getattr(out, cache_name), out.logits[0, -1]
            result.steps = step
            diff = (cached - full).abs().max().item()
            diff = diff if math.isfinite(diff) else math.inf
            if diff > result.max_diff or step == 1:
                result.max_diff, result.worst_step = diff, step
            if diff > tolerance and result.first_drift_step is None:
                result.first_drift_step = step
            token, reference = int(cached.argmax()), int(full.argmax())
            if token != reference:
                top_two = full.topk(2).values
                if (top_two[0] - top_two[1]).item() <= tolerance:
                    result.ties += 1
                elif result.token_mismatch is None:
                    result.token_mismatch = (step, token, reference)
            step_input = torch.tensor([[token]])
            sequence = torch.cat([sequence, step_input], dim=1)
    return result


def run_transformers_regression(config: dict[str, Any] | None = None) -> list[ScenarioResult]:
    model = build_transformers_gpt_oss(config)
    return [run_transformers_scenario(model, s) for s in scenarios(model.config.sliding_window)]
