"""The regression on transformers' gpt-oss eager attention (runs only where torch is installed)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers.models.gpt_oss")

from adapter_guard.mlx.gpt_oss_transformers import (  # noqa: E402
    PREFIX,
    TOLERANCE,
    build_transformers_gpt_oss,
    run_transformers_regression,
)


@pytest.fixture(scope="module")
def tiny():
    return build_transformers_gpt_oss()


def test_transformers_model_uses_eager_attention_and_the_tiny_window(tiny):
    assert (tiny.config._attn_implementation, tiny.config.sliding_window) == ("eager", 16)


def test_transformers_cache_matches_full_recompute_in_every_scenario():
    results = run_transformers_regression()
    assert [r.passed for r in results] == [True] * 5
    assert all(r.scenario.name.startswith(PREFIX) and r.max_diff <= TOLERANCE for r in results)
