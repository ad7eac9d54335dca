"""Test-only: plant bugs into a stock mlx-lm gpt-oss model, behind the interface the regression uses.

``adapter_guard.mlx.gpt_oss.run_scenario`` only calls ``model(tokens,
cache=...)``, ``model.make_cache()``, ``model.args`` and ``model.model``.
:class:`Hooked` wraps a real model and swaps one piece at a time:

- ``cache_factory(model)``: the caches (e.g. a sliding cache one slot too big);
- ``mask_fn(h, cache, window_size)``: the mask function, used by the cached
  and the recompute path alike (e.g. a window off by one);
- ``attention(q, k, v, *, scale, mask, sinks)``: the attention kernel (e.g.
  the reference eager attention in ``gpt_oss_attention.py``, the path
  upstream crashed in).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CacheFactory = Callable[[Any], list]
MaskFn = Callable[[Any, Any, "int | None"], Any]
#: ``attention(queries, keys, values, *, scale, mask, sinks) -> output``.
AttentionFn = Callable[..., Any]


class Hooked:
    """``model`` as ``run_scenario`` sees it, with the given pieces swapped."""

    def __init__(
        self,
        model,
        *,
        cache_factory: CacheFactory | None = None,
        mask_fn: MaskFn | None = None,
        attention: AttentionFn | None = None,
    ):
        self.wrapped = model
        self.args, self.model, self.layers = model.args, model.model, model.layers
        self.cache_factory, self.mask_fn, self.attention = cache_factory, mask_fn, attention

    def make_cache(self) -> list:
        return self.cache_factory(self.wrapped) if self.cache_factory else self.wrapped.make_cache()

    def __call__(self, tokens, cache=None):
        return forward(self.wrapped, tokens, cache, mask_fn=self.mask_fn, attention=self.attention)


def forward(model, tokens, cache=None, *, mask_fn: MaskFn | None = None, attention: AttentionFn | None = None):
    """Logits of ``model`` on ``tokens`` (shape ``(1, L)``).

    With no hook this is simply ``model(tokens, cache=cache)``: stock mlx-lm
    end to end. With hooks it runs the same stock modules in the order
    ``GptOssMoeModel.__call__`` and ``TransformerBlock.__call__`` do, but builds
    the two masks with ``mask_fn(h, cache, window_size)`` instead of
    ``create_attention_mask``, and/or computes attention with
    ``attention(q, k, v, scale=, mask=, sinks=)`` instead of
    ``mx.fast.scaled_dot_product_attention`` (e.g. the reference
    :func:`gpt_oss_attention.eager_attention`).
    """
    if mask_fn is None and attention is None:
        return model(tokens, cache=cache)
    if mask_fn is None:
        from mlx_lm.models.base import create_attention_mask as mask_fn
    inner = model.model
    caches = cache or [None] * len(inner.layers)
    h = inner.embed_tokens(tokens)
    full_mask = mask_fn(h, caches[inner.ga_idx], None)
    sliding_mask = mask_fn(h, caches[inner.swa_idx], inner.window_size)
    for layer, layer_cache, kind in zip(inner.layers, caches, inner.layer_types):
        mask = full_mask if kind == "full_attention" else sliding_mask
        if attention is None:
            h = layer(h, mask, layer_cache)
        else:
            h = h + _attention_block(layer.self_attn, layer.input_layernorm(h), mask, layer_cache, attention)
            h = h + layer.mlp(layer.post_attention_layernorm(h))
    return model.lm_head(inner.norm(h))


def _attention_block(block, x, mask, cache, attention: AttentionFn):
    """``AttentionBlock.__call__`` with the attention computation swapped."""
    B, L, _ = x.shape
    q = block.q_proj(x).reshape(B, L, -1, block.head_dim).swapaxes(1, 2)
    k = block.k_proj(x).reshape(B, L, -1, block.head_dim).swapaxes(1, 2)
    v = block.v_proj(x).reshape(B, L, -1, block.head_dim).swapaxes(1, 2)
    offset = cache.offset if cache is not None else 0
    q, k = block.rope(q, offset=offset), block.rope(k, offset=offset)
    if cache is not None:
        k, v = cache.update_and_fetch(k, v)
    out = attention(q, k, v, scale=block.sm_scale, mask=mask, sinks=block.sinks)
    return block.o_proj(out.swapaxes(1, 2).reshape(B, L, -1))
