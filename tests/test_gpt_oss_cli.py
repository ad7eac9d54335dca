"""``adapter-guard --gpt-oss`` end to end: exit 0 on stock mlx-lm, non-zero on each planted bug.

The bugs are planted where they would live: in mlx-lm's gpt-oss module (its
mask function and its sliding cache class) and in the adapter loader. The
CLI has no hooks; it runs exactly what users run.
"""

from __future__ import annotations

import pytest

pytest.importorskip("mlx.core")

import mlx_lm.models.gpt_oss as stock_gpt_oss  # noqa: E402
from builders import make_live_adapter, save_mlx_lm_style, write_base_dir  # noqa: E402
from mlx_lm.models.base import create_attention_mask  # noqa: E402
from mlx_lm.models.cache import RotatingKVCache  # noqa: E402

from adapter_guard.cli import main  # noqa: E402
from adapter_guard.mlx import reload  # noqa: E402
from adapter_guard.mlx.gpt_oss import TINY_GPT_OSS  # noqa: E402


@pytest.fixture
def gpt_oss_adapter(tmp_path):
    """A tiny gpt-oss adapter with dropout 0.5 and its base beside it (config.json only)."""
    params = {"rank": 4, "scale": 2.0, "dropout": 0.5}
    model = make_live_adapter(TINY_GPT_OSS, num_layers=-1, dropout=0.5)
    adapter_dir = save_mlx_lm_style(model, tmp_path / "adapter", num_layers=-1, lora_parameters=params)
    write_base_dir(TINY_GPT_OSS, adapter_dir)
    return adapter_dir


def sliding_window_off_by_one(h, cache=None, window_size=None, return_array=False):
    return create_attention_mask(h, cache, window_size + 1 if window_size else None, return_array)


class SlidingCacheOneTooMany(RotatingKVCache):
    def __init__(self, max_size, keep=0):
        super().__init__(max_size + 1, keep)

    def make_mask(self, N, window_size=None, return_array=False):
        return super().make_mask(N, window_size=self.max_size, return_array=return_array)


def load_adapters_without_eval(model, adapter_dir):
    from mlx_lm.tuner.utils import load_adapters

    return load_adapters(model, str(adapter_dir))


def test_stock_mlx_lm_passes_with_a_report_line_per_scenario(gpt_oss_adapter, capsys):
    assert main(["--gpt-oss", str(gpt_oss_adapter)]) == 0
    out = capsys.readouterr().out
    assert out.count(" ok\n") == 5 and "gpt-oss reported-scaled: prefill 12 + 13 new tokens, 13 steps" in out


def test_builtin_run_passes_when_no_adapter_is_found(tmp_path, capsys):
    assert main(["--gpt-oss", str(tmp_path)]) == 0
    assert "<built-in gpt-oss>: gpt-oss regression: built-in tiny gpt-oss" in capsys.readouterr().out


def test_off_by_one_sliding_window_mask_fails_the_run(gpt_oss_adapter, monkeypatch, capsys):
    monkeypatch.setattr(stock_gpt_oss, "create_attention_mask", sliding_window_off_by_one)
    assert main(["--gpt-oss", str(gpt_oss_adapter)]) == 1
    assert "AG601" in capsys.readouterr().out


def test_sliding_cache_keeping_one_position_too_many_fails_the_run(gpt_oss_adapter, monkeypatch, capsys):
    monkeypatch.setattr(stock_gpt_oss, "RotatingKVCache", SlidingCacheOneTooMany)
    assert main(["--gpt-oss", str(gpt_oss_adapter)]) == 1
    assert "AG601" in capsys.readouterr().out


def test_adapter_dropout_left_active_fails_the_run(gpt_oss_adapter, monkeypatch, capsys):
    monkeypatch.setattr(reload, "reload_adapter", load_adapters_without_eval)
    assert main(["--gpt-oss", str(gpt_oss_adapter)]) == 1
    assert "AG601" in capsys.readouterr().out


def test_builtin_run_fails_on_a_planted_bug_too(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(stock_gpt_oss, "create_attention_mask", sliding_window_off_by_one)
    assert main(["--gpt-oss", str(tmp_path)]) == 1
    assert "<built-in gpt-oss>:1: AG601" in capsys.readouterr().out
