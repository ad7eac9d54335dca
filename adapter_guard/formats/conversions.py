"""MLX files written by a converter: factors left in PEFT's orientation. Pure.

MLX stores ``lora_a`` (in, r) and ``lora_b`` (r, out); PEFT stores lora_A
(r, in) and lora_B (out, r). A converter that forgets to transpose gives, on a
square module, a pair that reads as "rank = hidden size", and on any other a
pair whose axes disagree. Either way no rank may be read from it.
"""

from __future__ import annotations

from ..infer import AdapterShape, peft_oriented
from ..record import replace
from .shared import Emitter, ModuleWidths, names

__all__ = ["mlx_widths", "peft_oriented", "reported_contradictions", "transposed_modules", "transposed_rule"]


def transposed_modules(shape: AdapterShape) -> list[str]:
    # infer_adapter marks each such pair as it reads its rank: no second pass over the modules.
    return sorted(shape.peft_oriented)


def transposed_rule(shape: AdapterShape, emit: Emitter) -> AdapterShape:
    """AG831 for PEFT-oriented pairs; returns the shape with those modules' ranks withdrawn.

    Each such module becomes "contradicted", so no rule infers a rank (or a
    rank fix) from it.
    """
    transposed = transposed_modules(shape)
    if not transposed:
        return shape
    first = shape.modules[transposed[0]]
    emit(
        "AG831",
        f"{len(transposed)} module(s) have lora_a/lora_b in PEFT orientation, (r, in) and (out, r), e.g. "
        f"`{first.path}` lora_a {first.lora_a}, lora_b {first.lora_b}: transpose both factors "
        f"(MLX wants (in, r) and (r, out)): {names(transposed)}",
    )
    ranks = {
        rank: [p for p in paths if p not in transposed]
        for rank, paths in shape.ranks.items()
    }
    contradicted = dict(shape.contradicted)
    for path in transposed:
        contradicted[path] = "the factors are in PEFT orientation (AG831); no rank is read from them"
    return replace(shape, ranks={r: p for r, p in ranks.items() if p}, contradicted=contradicted)


def reported_contradictions(shape: AdapterShape) -> dict[str, str]:
    """``shape.contradicted`` less the modules AG831 reports (after ``transposed_rule``).

    Those stay contradicted, so no rank is read or fixed from them, but AG105 would
    report each a second time, and AG831 names the cause: one finding per module.
    """
    return {
        path: reason for path, reason in shape.contradicted.items()
        if path not in shape.modules or not peft_oriented(shape.modules[path].lora_a, shape.modules[path].lora_b)
    }


def mlx_widths(shape: AdapterShape) -> list[ModuleWidths]:
    """(module, in, out) of each 2-D MLX pair: lora_a (in, r), lora_b (r, out)."""
    out = []
    for path, m in shape.modules.items():
        a, b = m.lora_a, m.lora_b
        if a is None or b is None or len(a) != 2 or len(b) != 2 or m.rank is None or m.rank.rank is None:
            continue
        if path in shape.contradicted:
            continue
        out.append(ModuleWidths(path, a[0], b[1]))
    return out
