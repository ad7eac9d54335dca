"""Live-shape inference: what the adapter tensors prove, from shapes alone.

Pure functions over ``{tensor name: shape}``. The file lint feeds them shapes
from the safetensors header; the MLX live-module code (``adapter_guard.mlx``)
feeds them ``module.lora_a.shape`` and friends. One set of helpers, not two.
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Mapping, Sequence

from .record import MutableRecord, Record

ADAPTER_LEAVES = frozenset({"lora_a", "lora_b", "m"})

Shape = tuple[int, ...]

# ``model.layers.3.self_attn.q_proj``, ``language_model.model.layers.12.mlp``,
# ``layers.0.attention.wq``: the prefix ends in ``layers``, then the index.
# An index of more than 4,000 digits is no transformer layer (and int() of a
# hostile 5,000-digit one would raise: Python caps int() at 4,300 digits).
_LAYER_RE = re.compile(r"^(?P<prefix>(?:.*\.)?layers)\.(?P<index>\d{1,4000})(?:\.(?P<rest>.+))?$")


class RankResult(Record):
    """The rank of one module, or why there is none."""

    __slots__ = ("rank", "layout", "reason", "peft_oriented")

    def __init__(self, rank: int | None, layout: str, reason: str | None = None, peft_oriented: bool = False) -> None:
        self.rank = rank
        self.layout = layout  # "linear", "switch", "legacy-switch", or "unknown"
        self.reason = reason  # set when rank is None
        #: The pair is in PEFT's orientation, not MLX's (``peft_oriented``): kept with the
        #: memoised rank so the lint needs no second pass over the modules to find such pairs.
        self.peft_oriented = peft_oriented


def infer_rank(lora_a: Sequence[int], lora_b: Sequence[int]) -> RankResult:
    """Read the rank from an mlx-lm ``lora_a``/``lora_b`` pair.

    ======================  =================  ==================  ===============
    layout                  lora_a             lora_b              rank
    ======================  =================  ==================  ===============
    Linear / Embedding      (in, r)            (r, out)            a[-1] == b[0]
    switch (>= 0.28.3)      (E, r, in)         (E, out, r)         a[-2] == b[-1]
    legacy switch           (r*E, in)          (E, out, r)         b[-1], a[0]==E*r
    ======================  =================  ==================  ===============

    When the factors disagree the rank is *contradicted*: ``rank`` is None and
    ``reason`` says why. There is deliberately no fallback to another axis.
    """
    return _infer_rank(tuple(lora_a), tuple(lora_b))


# Adapters repeat the same few shape pairs and module names hundreds of times,
# and a repository repeats them across adapters: both lookups are memoised.
# The caches live for the whole run, outside the per-header memory bound, so
# each holds a bounded number of entries of bounded size: longer keys (only a
# hostile header has them) are computed every time instead.

#: Cached only for shapes of at most this many dimensions in all (real factors have 2 or 3 each).
MAX_CACHED_DIMS = 8
#: Cached only for module paths of at most this many characters (real ones are under 100).
MAX_CACHED_PATH = 256


def _infer_rank(a: Shape, b: Shape) -> RankResult:
    if len(a) + len(b) > MAX_CACHED_DIMS:
        return _rank_of(a, b)
    return _cached_rank(a, b)


def peft_oriented(a: Shape | None, b: Shape | None) -> bool:
    """Whether a 2-D ``lora_a``/``lora_b`` pair is in PEFT's orientation and not MLX's.

    MLX stores ``lora_a`` (in, r) and ``lora_b`` (r, out); PEFT stores lora_A
    (r, in) and lora_B (out, r). PEFT's reading (a[0] == b[1] is the rank) must
    give a rank below both widths, and MLX's (a[1] == b[0]) must not.
    """
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return False
    as_peft = a[0] == b[1] and a[0] < min(a[1], b[0])
    as_mlx = a[1] == b[0] and a[1] < min(a[0], b[1])
    return as_peft and not as_mlx


def _rank_of(a: Shape, b: Shape) -> RankResult:
    result = _rank_by_layout(a, b)
    if peft_oriented(a, b):
        return RankResult(result.rank, result.layout, result.reason, peft_oriented=True)
    return result


def _rank_by_layout(a: Shape, b: Shape) -> RankResult:
    if any(d <= 0 for d in a + b):
        return RankResult(None, "unknown", f"zero-sized factor: lora_a {a}, lora_b {b}")
    if len(a) == 2 and len(b) == 2:
        if a[1] == b[0]:
            return RankResult(a[1], "linear")
        return RankResult(None, "linear", f"lora_a {a} has rank {a[1]} on axis -1, lora_b {b} has {b[0]} on axis 0")
    if len(a) == 3 and len(b) == 3:
        if a[0] != b[0]:
            return RankResult(None, "switch", f"expert counts differ: lora_a {a}, lora_b {b}")
        if a[1] == b[2]:
            return RankResult(a[1], "switch")
        return RankResult(None, "switch", f"lora_a {a} has rank {a[1]} on axis -2, lora_b {b} has {b[2]} on axis -1")
    if len(a) == 2 and len(b) == 3:
        experts, rank = b[0], b[2]
        if a[0] == experts * rank:
            return RankResult(rank, "legacy-switch")
        return RankResult(
            None, "legacy-switch", f"lora_a {a} axis 0 is {a[0]}, not experts*rank = {experts}*{rank} from lora_b {b}"
        )
    return RankResult(None, "unknown", f"no known layout has lora_a {a} with lora_b {b}")


# At most 4,096 x 2 x 8 dimensions, plus a reason string of about that size each: well under 10 MB.
_cached_rank = lru_cache(maxsize=4096)(_rank_of)


def split_tensor_name(name: str) -> tuple[str, str]:
    """``model.layers.0.self_attn.q_proj.lora_a`` -> (module path, leaf)."""
    module, _, leaf = name.rpartition(".")
    return module, leaf


class LayerPath(Record):
    __slots__ = ("prefix", "index", "relative")

    def __init__(self, prefix: str, index: int, relative: str) -> None:
        self.prefix = prefix  # e.g. "model.layers" or "language_model.model.layers"
        self.index = index
        self.relative = relative  # layer-relative module name, e.g. "self_attn.q_proj"


def layer_path(module: str) -> LayerPath | None:
    """Split a module path at its transformer layer, if it is inside one."""
    if len(module) > MAX_CACHED_PATH:
        return _split_layer_path(module)
    return _cached_layer_path(module)


def _split_layer_path(module: str) -> LayerPath | None:
    m = _LAYER_RE.match(module)
    if m is None or not m.group("rest"):
        return None
    return LayerPath(m.group("prefix"), int(m.group("index")), m.group("rest"))


# At most 16,384 paths of 256 characters (4 MB of text) and their LayerPaths.
_cached_layer_path = lru_cache(maxsize=16384)(_split_layer_path)


class ModuleShapes(MutableRecord):
    __slots__ = ("path", "lora_a", "lora_b", "m", "rank")

    def __init__(self, path: str, lora_a: Shape | None = None, lora_b: Shape | None = None, m: Shape | None = None,
                 rank: RankResult | None = None) -> None:
        self.path = path
        self.lora_a = lora_a
        self.lora_b = lora_b
        self.m = m
        self.rank = rank


class AdapterShape(MutableRecord):
    """What a set of adapter tensors proves about its config."""

    __slots__ = ("modules", "foreign", "unpaired", "contradicted", "peft_oriented", "ranks", "layer_indices",
                 "relative_keys", "outer_keys", "has_m")

    def __init__(
        self,
        modules: dict[str, ModuleShapes] | None = None,
        foreign: list[str] | None = None,
        unpaired: dict[str, str] | None = None,
        contradicted: dict[str, str] | None = None,
        peft_oriented: list[str] | None = None,
        ranks: dict[int, list[str]] | None = None,
        layer_indices: dict[str, set[int]] | None = None,
        relative_keys: set[str] | None = None,
        outer_keys: set[str] | None = None,
        has_m: bool = False,
    ) -> None:
        self.modules = {} if modules is None else modules
        #: Tensors whose last name part is not lora_a / lora_b / m.
        self.foreign = [] if foreign is None else foreign
        #: Modules with only one LoRA factor: path -> the factor present.
        self.unpaired = {} if unpaired is None else unpaired
        #: Modules whose rank is contradicted: path -> reason.
        self.contradicted = {} if contradicted is None else contradicted
        #: Modules whose factors are in PEFT's orientation (``peft_oriented``), in tensor order.
        self.peft_oriented = [] if peft_oriented is None else peft_oriented
        #: Inferred rank -> modules that have it.
        self.ranks = {} if ranks is None else ranks
        #: Layer indices that carry adapter tensors, per layer prefix.
        self.layer_indices = {} if layer_indices is None else layer_indices
        #: Layer-relative names of modules inside layers.
        self.relative_keys = set() if relative_keys is None else relative_keys
        #: Full paths of modules outside any transformer layer.
        self.outer_keys = set() if outer_keys is None else outer_keys
        self.has_m = has_m

    @property
    def rank(self) -> int | None:
        """The adapter's single rank, or None (no modules, or mixed ranks)."""
        return next(iter(self.ranks)) if len(self.ranks) == 1 else None

    @property
    def fine_tune_type(self) -> str | None:
        if not self.modules:
            return None
        return "dora" if self.has_m else "lora"

    @property
    def keys(self) -> list[str]:
        """The ``lora_parameters.keys`` these tensors need, sorted."""
        return sorted(self.relative_keys) + sorted(self.outer_keys)

    @property
    def all_layer_indices(self) -> set[int]:
        out: set[int] = set()
        for indices in self.layer_indices.values():
            out |= indices
        return out


def infer_adapter(tensors: Mapping[str, Sequence[int]]) -> AdapterShape:
    """Infer everything the shapes prove, from ``{tensor name: shape}``.

    This runs once per adapter on the lint path, over every tensor, so the
    loops are kept plain: one pass to group factors by module, one per module.
    """
    shape = AdapterShape()
    # One dict per factor, keyed by module path; ``paths`` keeps the modules in
    # the order their first tensor came (a dict per module costs more).
    paths: dict[str, None] = {}
    factor_a: dict[str, Sequence[int]] = {}
    factor_b: dict[str, Sequence[int]] = {}
    factor_m: dict[str, Sequence[int]] = {}
    foreign = shape.foreign
    for name, dims in tensors.items():
        module, _, leaf = name.rpartition(".")
        if not module:
            foreign.append(name)
        elif leaf == "lora_a":
            factor_a[module] = dims
            paths[module] = None
        elif leaf == "lora_b":
            factor_b[module] = dims
            paths[module] = None
        elif leaf == "m":
            factor_m[module] = dims
            paths[module] = None
        else:
            foreign.append(name)

    modules, ranks, unpaired, contradicted = shape.modules, shape.ranks, shape.unpaired, shape.contradicted
    oriented = shape.peft_oriented
    layer_indices, relative_keys, outer_keys = shape.layer_indices, shape.relative_keys, shape.outer_keys
    for path in paths:
        a, b, m = factor_a.get(path), factor_b.get(path), factor_m.get(path)
        # Header shapes are already tuples; live-module shapes may be lists.
        if a is not None and type(a) is not tuple:
            a = tuple(a)
        if b is not None and type(b) is not tuple:
            b = tuple(b)
        if m is not None:
            shape.has_m = True
            if type(m) is not tuple:
                m = tuple(m)
        entry = modules[path] = ModuleShapes(path, a, b, m)
        # layer_path() and _infer_rank(), inlined: this loop runs for every module.
        located = _cached_layer_path(path) if len(path) <= MAX_CACHED_PATH else _split_layer_path(path)
        if located is None:
            outer_keys.add(path)
        else:
            indices = layer_indices.get(located.prefix)
            if indices is None:
                indices = layer_indices[located.prefix] = set()
            indices.add(located.index)
            relative_keys.add(located.relative)
        if a is None or b is None:
            if a is not None or b is not None:
                unpaired[path] = "lora_a" if a is not None else "lora_b"
            continue
        entry.rank = rank = _cached_rank(a, b) if len(a) + len(b) <= MAX_CACHED_DIMS else _rank_of(a, b)
        if rank.peft_oriented:
            oriented.append(path)
        value = rank.rank
        if value is None:
            contradicted[path] = rank.reason or "contradicted"
        else:
            same = ranks.get(value)
            if same is None:
                ranks[value] = [path]
            else:
                same.append(path)
    return shape


def infer_num_layers(
    shape: AdapterShape, total_layers: int | None = None
) -> tuple[int | None, str]:
    """The ``num_layers`` the tensors prove, and why (or why not).

    - No layer has tensors: -1 (num_layers then only decides which layers the
      default module set wraps; un-trained wraps start with lora_b = 0 and
      change nothing).
    - The layers run contiguously from 0: -1, all layers.
    - With the base model's layer count: the length of the suffix, or -1
      when it is all of them.
    - Otherwise None: a run such as 16..31 is the last 16 layers only if the
      model has 32, which the adapter files alone do not prove.
    """
    indices = shape.all_layer_indices
    if not indices:
        return -1, "no adapter tensors sit inside transformer layers"
    lo, hi = min(indices), max(indices)
    contiguous = len(indices) == hi - lo + 1
    if total_layers is not None:
        if hi >= total_layers:
            return None, f"layer {hi} has tensors but the base model has {total_layers} layers"
        if not contiguous or hi != total_layers - 1:
            return None, f"layers {_ranges(indices)} are not the last layers of a {total_layers}-layer model"
        count = total_layers - lo
        return (-1 if count == total_layers else count), f"layers {lo}..{hi} of {total_layers}"
    if lo == 0 and contiguous:
        return -1, f"layers 0..{hi} carry tensors"
    return None, (
        f"layers {_ranges(indices)} carry tensors; their count is the right num_layers only if "
        f"layer {hi} is the model's last, which needs the base model's config.json (--base-model)"
    )


def _ranges(indices: set[int]) -> str:
    """{0,1,2,5,7,8} -> '0..2, 5, 7..8'."""
    out, run = [], []
    for i in sorted(indices):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}..{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        out.append(f"{run[0]}..{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)
