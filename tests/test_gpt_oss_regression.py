"""The cached-vs-recompute regression on stock mlx-lm gpt-oss, and the bugs it must catch."""

from __future__ import annotations

import math

import pytest

mx = pytest.importorskip("mlx.core")

from mlx_lm.models.base import create_attention_mask, create_causal_mask  # noqa: E402
from mlx_lm.models.cache import KVCache, RotatingKVCache  # noqa: E402

from gpt_oss_attention import eager_attention  # noqa: E402
from gpt_oss_hooks import Hooked, forward  # noqa: E402

from adapter_guard.mlx import gpt_oss  # noqa: E402
from adapter_guard.mlx.gpt_oss import (  # noqa: E402
    TINY_GPT_OSS,
    TOLERANCES,
    build_tiny_gpt_oss,
    run_regression,
    run_scenario,
    scenarios,
)

W = TINY_GPT_OSS["sliding_window"]


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_gpt_oss()


def builtin_findings(monkeypatch, **hooks):
    """``--gpt-oss``'s built-in run, with a bug planted in its model (see gpt_oss_hooks)."""
    build = gpt_oss.build_tiny_gpt_oss
    monkeypatch.setattr(gpt_oss, "build_tiny_gpt_oss", lambda *a, **k: Hooked(build(*a, **k), **hooks))
    return gpt_oss.gpt_oss_findings(None, None, base_model=None)[0]


def error_codes(findings):
    return sorted({f.code for f in findings if f.severity == "error"})


# -- scenarios ---------------------------------------------------------------------------


def test_scenarios_prefill_around_the_window_and_the_scaled_reported_case():
    assert [s.prefill for s in scenarios(16)] == [1, 15, 16, 17, 12]


@pytest.mark.parametrize("window", [4, 16, 128])
def test_every_scenario_crosses_the_window_by_at_least_half_of_it(window):
    assert all(s.max_key_length >= window + window / 2 for s in scenarios(window))


def test_reported_case_at_window_128_is_98_prefilled_and_at_least_64_new():
    reported = scenarios(128)[-1]
    assert (reported.prefill, reported.new_tokens >= 64, reported.max_key_length >= 161) == (98, True, True)


# -- stock mlx-lm passes --------------------------------------------------------------------


def test_stock_cache_matches_full_recompute_in_every_scenario(tiny):
    results = run_regression(tiny)
    assert [r.passed for r in results] == [True] * len(results)
    assert all(r.max_diff <= TOLERANCES["float32"] for r in results)


def test_each_scenario_compares_one_step_per_new_token(tiny):
    results = run_regression(tiny)
    assert [r.steps for r in results] == [s.new_tokens for s in scenarios(W)]


def test_tiny_model_uses_rotating_cache_for_sliding_and_kv_cache_for_full_layers(tiny):
    kinds = [type(c).__name__ for c in tiny.make_cache()]
    assert kinds == ["RotatingKVCache", "KVCache"] * 2
    assert tiny.make_cache()[0].max_size == W


def test_forward_with_stock_mask_function_is_the_stock_model_call(tiny):
    """The mask_fn hook mirrors GptOssMoeModel.__call__; if mlx-lm changes, this fails."""
    tokens = mx.array([list(range(W + 5))])
    assert mx.array_equal(forward(tiny, tokens, mask_fn=create_attention_mask), tiny(tokens)).item()


def test_sinks_of_the_builtin_model_are_not_zero(tiny):
    assert all(mx.any(layer.self_attn.sinks != 0).item() for layer in tiny.layers)


# -- injected bugs are caught ---------------------------------------------------------------


def sliding_window_off_by_one(h, cache, window_size):
    """The sliding-window mask admits one position too many."""
    return create_attention_mask(h, cache, window_size + 1 if window_size else None)


class SlidingCacheOneTooMany(RotatingKVCache):
    """A sliding cache sized window + 1 that masks by its own size: it attends one stale position."""

    def __init__(self, window: int):
        super().__init__(max_size=window + 1)

    def make_mask(self, N, window_size=None, return_array=False):
        return super().make_mask(N, window_size=self.max_size, return_array=return_array)


def caches_keeping_one_too_many(model):
    return [
        SlidingCacheOneTooMany(model.args.sliding_window) if kind == "sliding_attention" else KVCache()
        for kind in model.model.layer_types
    ]


class PreallocatedKVCache(KVCache):
    """Upstream's setup: every allocated slot is returned, with an explicit mask of the real length."""

    def keys_and_values(self):
        return self.keys, self.values

    def make_mask(self, N, window_size=None, return_array=False):
        return create_causal_mask(N, self.offset, window_size=window_size)


def caches_with_preallocated_full_layers(model):
    return [
        RotatingKVCache(model.args.sliding_window) if kind == "sliding_attention" else PreallocatedKVCache()
        for kind in model.model.layer_types
    ]


def test_off_by_one_sliding_window_mask_is_reported_as_drift(monkeypatch):
    findings = builtin_findings(monkeypatch, mask_fn=sliding_window_off_by_one)
    assert error_codes(findings) == ["AG601"]


def test_sliding_cache_keeping_one_position_too_many_is_reported_as_drift(monkeypatch):
    findings = builtin_findings(monkeypatch, cache_factory=caches_keeping_one_too_many)
    assert error_codes(findings) == ["AG601"]


def test_drift_only_appears_once_the_window_is_crossed(tiny):
    result = run_scenario(Hooked(tiny, cache_factory=caches_keeping_one_too_many), scenarios(W)[0])
    # prefill 1: step s attends s keys, so the stale extra position first exists at step W + 1
    assert result.first_drift_step == W + 1


def test_surplus_cache_positions_raise_AG602_naming_scenario_and_shapes(monkeypatch):
    findings = builtin_findings(monkeypatch, cache_factory=caches_with_preallocated_full_layers)
    raised = [f.message for f in findings if f.code == "AG602"]
    assert raised and all("scenario " in m and "Shapes" in m and "PreallocatedKVCache offset" in m for m in raised)


def test_a_scenario_that_raises_stops_and_records_the_step(tiny):
    result = run_scenario(Hooked(tiny, cache_factory=caches_with_preallocated_full_layers), scenarios(W)[1])
    assert (result.passed, result.steps, result.error.startswith("at step 1 (input (1, 15)")) == (False, 0, True)


def fast_attention(q, k, v, *, scale, mask, sinks):
    return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask, sinks=sinks)


def eager_without_alignment(q, k, v, *, scale, mask, sinks):
    return eager_attention(q, k, v, scale=scale, mask=mask, sinks=sinks, align=False)


def test_forward_with_stock_attention_hook_is_the_stock_model_call(tiny):
    """The attention hook mirrors AttentionBlock.__call__; if mlx-lm changes, this fails."""
    tokens = mx.array([list(range(W + 5))])
    assert mx.array_equal(forward(tiny, tokens, attention=fast_attention), tiny(tokens)).item()


def test_reference_eager_attention_in_the_model_matches_stock_logits(tiny):
    tokens = mx.array([list(range(2 * W))])
    assert mx.max(mx.abs(forward(tiny, tokens, attention=eager_attention) - tiny(tokens))).item() <= 1e-5


def test_reference_eager_attention_passes_the_regression_with_stock_caches(tiny):
    assert all(r.passed for r in run_regression(Hooked(tiny, attention=eager_attention)))


def test_eager_path_with_surplus_cache_positions_crashes_like_upstream(tiny):
    hooked = Hooked(tiny, attention=eager_without_alignment, cache_factory=caches_with_preallocated_full_layers)
    results = run_regression(hooked)
    assert all(r.error and "cannot be broadcast" in r.error for r in results)


def test_eager_path_with_surplus_cache_positions_and_alignment_passes(tiny):
    results = run_regression(Hooked(tiny, attention=eager_attention, cache_factory=caches_with_preallocated_full_layers))
    assert [r.passed for r in results] == [True] * len(results)


def test_tolerance_defaults_to_the_logits_dtype(tiny):
    result = run_scenario(tiny, scenarios(W)[0])
    assert result.tolerance == TOLERANCES["float32"] and math.isfinite(result.max_diff)
