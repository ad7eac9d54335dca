"""Reference eager attention for gpt-oss, in plain MLX ops, and the overlap rule.

This is the attention the upstream eager path computes, written out so the
shape rule at the heart of the gpt-oss regression can be tested on its own:

    scores = q @ k^T * scale          (B, H, L, S)
    scores = scores + mask            causal or sliding-window
    probs  = softmax([scores, sink])  one learned sink logit per head
    out    = probs[..., :S] @ v

The upstream bug: once generation crossed the sliding window, a cache with
pre-allocated slots handed a full-attention layer more key positions (161)
than the causal mask covered (128), and ``scores + mask`` failed to
broadcast. The fix is :func:`align_kv_to_mask`: attend only to the overlap.
Key position ``j`` means the same thing on both sides, so the overlap is the
leading ``min(S, mask length)`` positions; anything past it is masked anyway.

Test-only: adapter-guard itself runs stock mlx-lm attention. Used through
``gpt_oss_hooks.Hooked(model, attention=eager_attention)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import mlx.core as mx

#: What mlx-lm passes for a mask: None, the string "causal", a boolean array
#: (True = attend) or an additive float array.
Mask = Any


def attention_mask(query_len: int, offset: int = 0, window: int | None = None) -> mx.array:
    """The boolean mask for ``query_len`` queries after ``offset`` cached positions.

    Shape ``(query_len, offset + query_len)``. Query ``i`` sits at absolute
    position ``offset + i`` and attends key ``j`` when ``j <= offset + i`` and,
    for a sliding layer, ``offset + i - j < window`` (itself plus the
    ``window - 1`` positions before it).
    """
    import mlx.core as mx

    queries = mx.arange(offset, offset + query_len)[:, None]
    keys = mx.arange(offset + query_len)[None]
    mask = queries >= keys
    if window is not None:
        mask = mask & (queries - keys < window)
    return mask


def align_kv_to_mask(keys: mx.array, values: mx.array, mask: Mask) -> tuple[mx.array, mx.array, Mask]:
    """Apply the overlap rule: trim K/V to the mask length, or the mask to the K/V length.

    Slices only the last axis of the mask, so 2-D, 3-D and 4-D masks all work.
    ``None`` and ``"causal"`` masks carry no length and are returned as they are.
    """
    if mask is None or isinstance(mask, str):
        return keys, values, mask
    key_len, mask_len = keys.shape[-2], mask.shape[-1]
    if key_len > mask_len:
        return keys[..., :mask_len, :], values[..., :mask_len, :], mask
    if mask_len > key_len:
        return keys, values, mask[..., :key_len]
    return keys, values, mask


def eager_attention(
    queries: mx.array,
    keys: mx.array,
    values: mx.array,
    *,
    scale: float,
    mask: Mask = None,
    sinks: mx.array | None = None,
    align: bool = True,
) -> mx.array:
    """gpt-oss attention computed step by step.

    ``queries`` is ``(B, H, L, D)``; ``keys``/``values`` are ``(B, H_kv, S, D)``
    with ``H`` a multiple of ``H_kv`` (grouped-query attention). ``mask`` is
    anything mlx-lm passes (see :data:`Mask`); ``"causal"`` aligns the queries
    with the last ``L`` keys, as ``mx.fast.scaled_dot_product_attention`` does.
    ``sinks`` holds one logit per query head; it takes part in the softmax and
    is dropped afterwards, so a head may put weight on "nothing".

    With ``align=False`` the shapes are used as given, which is how the
    upstream eager path failed.
    """
    import mlx.core as mx

    if align:
        keys, values, mask = align_kv_to_mask(keys, values, mask)
    heads, kv_heads = queries.shape[1], keys.shape[1]
    if heads != kv_heads:
        keys = mx.repeat(keys, heads // kv_heads, axis=1)
        values = mx.repeat(values, heads // kv_heads, axis=1)

    scores = (queries * scale) @ keys.swapaxes(-1, -2)
    if isinstance(mask, str):
        if mask != "causal":
            raise ValueError(f"unknown mask {mask!r}")
        query_len, key_len = scores.shape[-2:]
        mask = attention_mask(query_len, key_len - query_len)
    if mask is not None:
        if mask.dtype == mx.bool_:
            scores = mx.where(mask, scores, mx.array(-mx.inf, scores.dtype))
        else:
            scores = scores + mask
    if sinks is not None:
        sink_logits = mx.broadcast_to(sinks.astype(scores.dtype)[None, :, None, None], (*scores.shape[:-1], 1))
        scores = mx.concatenate([scores, sink_logits], axis=-1)
    probs = mx.softmax(scores, axis=-1, precise=True)
    if sinks is not None:
        probs = probs[..., :-1]
    return probs @ values
