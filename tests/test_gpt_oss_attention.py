"""The reference eager attention for gpt-oss and the overlap rule (align_kv_to_mask)."""

from __future__ import annotations

import pytest

mx = pytest.importorskip("mlx.core")

from mlx_lm.models.base import create_causal_mask  # noqa: E402
from mlx_lm.models.cache import KVCache  # noqa: E402

from gpt_oss_attention import align_kv_to_mask, attention_mask, eager_attention  # noqa: E402

HEADS, KV_HEADS, HEAD_DIM, WINDOW = 4, 2, 8, 4
SCALE = HEAD_DIM**-0.5


def qkv(length: int, seed: int = 0):
    """Seeded queries, keys and values for ``length`` positions (grouped-query shapes)."""
    key = mx.random.key(seed)
    kq, kk, kv = mx.random.split(key, 3)
    return (
        mx.random.normal((1, HEADS, length, HEAD_DIM), key=kq),
        mx.random.normal((1, KV_HEADS, length, HEAD_DIM), key=kk),
        mx.random.normal((1, KV_HEADS, length, HEAD_DIM), key=kv),
    )


def sinks():
    return mx.random.normal((HEADS,), key=mx.random.key(7))


class PreallocatedKVCache(KVCache):
    """A KV cache that hands back every allocated slot, as upstream's did, not just the filled ones."""

    def keys_and_values(self):
        return self.keys, self.values


def assert_close(a, b, atol=1e-5):
    assert a.shape == b.shape
    assert mx.max(mx.abs(a - b)).item() <= atol


@pytest.mark.parametrize("offset", [0, 3, 9])
@pytest.mark.parametrize("window", [None, WINDOW])
def test_attention_mask_matches_mlx_lm_causal_mask(offset, window):
    ours = attention_mask(5, offset, window)
    assert mx.array_equal(ours, create_causal_mask(5, offset, window_size=window)).item()


def test_sliding_mask_lets_each_query_see_itself_and_window_minus_one_before():
    row = attention_mask(1, offset=9, window=WINDOW)[0].tolist()
    assert [j for j, seen in enumerate(row) if seen] == [6, 7, 8, 9]


def test_align_trims_keys_and_values_to_a_shorter_mask():
    keys = mx.arange(10.0).reshape(1, 1, 10, 1)
    mask = attention_mask(1, offset=5)  # covers 6 positions
    k, v, m = align_kv_to_mask(keys, keys, mask)
    assert k[0, 0, :, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert v.shape == k.shape and m is mask


def test_align_trims_a_longer_mask_to_the_keys():
    _, keys, values = qkv(6)
    mask = mx.zeros((1, 1, 1, 9))  # 4-D additive mask, as transformers builds
    k, v, m = align_kv_to_mask(keys, values, mask)
    assert (k is keys, v is values, m.shape) == (True, True, (1, 1, 1, 6))


@pytest.mark.parametrize("mask", [None, "causal"])
def test_align_leaves_masks_without_a_length_alone(mask):
    _, keys, values = qkv(6)
    assert align_kv_to_mask(keys, values, mask)[2] == mask


@pytest.mark.parametrize("window", [None, WINDOW], ids=["full", "sliding"])
@pytest.mark.parametrize("offset", [0, 7])
def test_eager_attention_matches_mlx_fast_attention_with_sinks(window, offset):
    q, _, _ = qkv(3, seed=1)
    _, k, v = qkv(offset + 3, seed=2)
    mask = attention_mask(3, offset, window)
    expected = mx.fast.scaled_dot_product_attention(q, k, v, scale=SCALE, mask=mask, sinks=sinks())
    assert_close(eager_attention(q, k, v, scale=SCALE, mask=mask, sinks=sinks()), expected)


def test_eager_attention_reads_the_causal_string_as_mlx_does():
    q, _, _ = qkv(3, seed=1)
    _, k, v = qkv(8, seed=2)
    expected = mx.fast.scaled_dot_product_attention(q, k, v, scale=SCALE, mask="causal", sinks=sinks())
    assert_close(eager_attention(q, k, v, scale=SCALE, mask="causal", sinks=sinks()), expected)


def decode_with_preallocated_cache(length: int, window: int | None, align: bool):
    """Feed ``length`` positions one at a time through a cache with surplus slots."""
    q, k, v = qkv(length)
    cache = PreallocatedKVCache()
    rows = []
    for i in range(length):
        keys, values = cache.update_and_fetch(k[:, :, i : i + 1], v[:, :, i : i + 1])
        assert keys.shape[2] == KVCache.step > i + 1  # more positions than the mask covers
        mask = attention_mask(1, offset=i, window=window)
        rows.append(eager_attention(q[:, :, i : i + 1], keys, values, scale=SCALE, mask=mask, sinks=sinks(), align=align))
    return mx.concatenate(rows, axis=2)


@pytest.mark.parametrize("window", [None, WINDOW], ids=["full", "sliding"])
def test_surplus_cache_positions_without_alignment_raise_a_shape_error(window):
    with pytest.raises(ValueError, match=r"broadcast"):
        mx.eval(decode_with_preallocated_cache(6, window, align=False))


@pytest.mark.parametrize("window", [None, WINDOW], ids=["full", "sliding"])
def test_surplus_cache_positions_with_alignment_equal_the_full_recompute(window):
    length = 2 * WINDOW + 3  # crosses the window
    q, k, v = qkv(length)
    recompute = eager_attention(q, k, v, scale=SCALE, mask=attention_mask(length, 0, window), sinks=sinks())
    assert_close(decode_with_preallocated_cache(length, window, align=True), recompute)
