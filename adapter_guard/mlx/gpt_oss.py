"""The gpt-oss attention regression behind ``adapter-guard --gpt-oss``.

gpt-oss alternates sliding-window and full-attention layers. In mlx-lm the
sliding layers decode with a ``RotatingKVCache(max_size=window)`` and the full
layers with a ``KVCache``; upstream (transformers' eager path) the two got out
of step once generation crossed the window, and attention crashed.

The regression: for a handful of prompt lengths around the window W, decode
greedily with stock mlx-lm's prompt cache (``model.make_cache()``) and, at
every step, recompute the whole sequence without a cache. The two must agree:

- the largest absolute logit difference stays within :func:`tolerance_for`;
- the greedy tokens are identical (a near-tie in the recompute, where the top
  two logits are closer than the tolerance, is a coin float noise may flip and
  is reported, not failed);
- nothing raises. An exception is a finding naming the scenario and shapes.

The path is exactly what users run: stock mlx-lm's gpt-oss model, its
prompt cache (``model.make_cache()``) and its masks, called as
``model(tokens, cache=...)``. The tests plant the bugs the check must catch
into a wrapper with the same interface (``tests/gpt_oss_hooks.py``).

mlx and mlx_lm are imported inside the functions, like everything here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..readers import read_config_bytes
from ..findings import Finding
from . import reload

#: The built-in tiny gpt-oss: stock mlx-lm architecture, shrunk so the whole
#: regression runs in a fraction of a second on a laptop CPU. Four layers alternating
#: sliding / full attention as in gpt-oss-20b, a window of 16 so every scenario
#: crosses it within a few dozen tokens, grouped-query attention (4 query heads
#: over 2 key/value heads), and a mixture of 4 experts with 2 active per token.
#: Weights are random with seed :data:`TINY_GPT_OSS_SEED`; the attention sinks
#: (zeros at mlx-lm init) are randomised too so they take part, as trained
#: sinks do. It is a ``config.json`` dict: write it out to get a base directory.
TINY_GPT_OSS: dict[str, Any] = {
    "model_type": "gpt_oss",
    "architectures": ["GptOssForCausalLM"],
    "num_hidden_layers": 4,
    "layer_types": ["sliding_attention", "full_attention"] * 2,
    "sliding_window": 16,
    "hidden_size": 32,
    "intermediate_size": 32,
    "head_dim": 8,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "vocab_size": 64,
    "rms_norm_eps": 1e-5,
    "rope_theta": 150000,
}
TINY_GPT_OSS_SEED = 0

BUILTIN_PATH = "<built-in gpt-oss>"

#: Max |logit difference| allowed between cached decoding and a full recompute,
#: by compute dtype. Both paths do the same arithmetic in a different order
#: (one query against cached keys vs. all queries at once), so they differ by
#: rounding only: about 1e-6 in float32 on the tiny config. Every bug injected
#: in the tests moves logits by more than 0.1.
TOLERANCES = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}

#: A base with no weight files is built with random weights, in memory. Past
#: this many parameters (about 400 MB in float32) that is refused (AG603):
#: a real gpt-oss-20b config would need 80 GB.
MAX_RANDOM_PARAMETERS = 100_000_000

# -- scenarios --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """Decode ``new_tokens`` greedy tokens after a prompt of ``prefill`` tokens.

    The cache ends up holding ``prefill + new_tokens - 1`` positions: the last
    token generated is never fed back. That is the longest key length any
    query attends to (upstream: 98 + 64 - 1 = 161).
    """

    name: str
    prefill: int
    new_tokens: int

    @property
    def max_key_length(self) -> int:
        return self.prefill + self.new_tokens - 1


def scenarios(window: int) -> list[Scenario]:
    """The prompt lengths around the window W that the regression decodes.

    Prefill 1, W-1, W, W+1, and the reported case scaled to W (98 of 128
    prefilled, 64 new). Each scenario decodes until its key length is at least
    W + W/2, so it crosses the window by at least W/2; the reported case keeps
    its 64/128 share of new tokens when that is already enough.
    """
    if window < 2:
        raise ValueError(f"sliding window must be at least 2, got {window}")
    target = window + math.ceil(window / 2)

    def scenario(name: str, prefill: int, at_least: int = 1) -> Scenario:
        return Scenario(name, prefill, max(at_least, target - prefill + 1))

    return [
        scenario("prefill-1", 1),
        scenario("prefill-W-1", window - 1),
        scenario("prefill-W", window),
        scenario("prefill-W+1", window + 1),
        scenario("reported-scaled", max(1, round(window * 98 / 128)), at_least=round(window * 64 / 128)),
    ]


def tolerance_for(dtype: Any) -> float:
    """The documented tolerance for logits of ``dtype`` (an ``mx.Dtype``)."""
    name = str(dtype).rsplit(".", 1)[-1]
    return TOLERANCES.get(name, TOLERANCES["bfloat16"])


# -- one scenario ------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    scenario: Scenario
    tolerance: float
    #: Positions whose logits were compared (one per generated token).
    steps: int = 0
    max_diff: float = 0.0
    #: 1-based step of the largest difference.
    worst_step: int = 0
    #: First step whose difference exceeds the tolerance.
    first_drift_step: int | None = None
    #: First step whose greedy tokens differ, with (cached, recompute) tokens.
    token_mismatch: tuple[int, int, int] | None = None
    #: Steps where the tokens differ on a near-tie (not a failure).
    ties: int = 0
    #: One line naming the step and shapes, when something raised.
    error: str | None = None

    @property
    def drifted(self) -> bool:
        return self.max_diff > self.tolerance or self.token_mismatch is not None

    @property
    def passed(self) -> bool:
        return self.error is None and not self.drifted

    def summary(self) -> str:
        s = self.scenario
        head = f"{s.name}: prefill {s.prefill} + {s.new_tokens} new tokens, {self.steps} step{'' if self.steps == 1 else 's'}"
        if self.error:
            return f"{head}, ERROR {self.error}"
        verdict = "ok" if self.passed else "DRIFT"
        ties = f", {self.ties} near-tie token flips" if self.ties else ""
        return f"{head}, max |logit diff| {self.max_diff:.2e}{ties} {verdict}"


def _cache_shapes(caches: Sequence[Any], layer_types: Sequence[str]) -> str:
    """``sliding_attention RotatingKVCache offset 17 of 16 slots``: the shapes an error is about.

    Layers of one kind share their state, so each distinct state is listed once.
    """
    states = []
    for kind, c in zip(layer_types, caches):
        held = 0 if getattr(c, "keys", None) is None else c.keys.shape[2]
        state = f"{kind} {type(c).__name__} offset {getattr(c, 'offset', '?')} of {held} slots"
        if state not in states:
            states.append(state)
    return ", ".join(states)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_scenario(
    model,
    scenario: Scenario,
    *,
    tolerance: float | None = None,
    seed: int = 0,
) -> ScenarioResult:
    """Greedy-decode one scenario with the prompt cache against full recomputes.

    Both paths see the same sequence at every step (the cached path's tokens),
    so a difference at one step does not cascade into the next.
    """
    import mlx.core as mx

    vocab = model.args.vocab_size
    prompt = mx.random.randint(0, vocab, (scenario.prefill,), key=mx.random.key(seed + scenario.prefill))
    sequence = prompt.tolist()
    caches = model.make_cache()
    layer_types = model.model.layer_types
    result = ScenarioResult(scenario, tolerance if tolerance is not None else math.inf)

    step_input = prompt[None]
    for step in range(1, scenario.new_tokens + 1):
        shapes = f"input {tuple(step_input.shape)}, sequence length {len(sequence)}; {_cache_shapes(caches, layer_types)}"
        try:
            cached = model(step_input, cache=caches)[0, -1]
            full = model(mx.array(sequence)[None])[0, -1]
            mx.eval(cached, full)
        except Exception as exc:  # any exception is the finding
            result.error = f"at step {step} ({shapes}): {_one_line(exc)}"
            return result
        if tolerance is None:
            tolerance = result.tolerance = tolerance_for(cached.dtype)
        result.steps = step
        diff = mx.max(mx.abs(cached.astype(mx.float32) - full.astype(mx.float32))).item()
        if not math.isfinite(diff):
            diff = math.inf
        if diff > result.max_diff or step == 1:
            result.max_diff, result.worst_step = diff, step
        if diff > tolerance and result.first_drift_step is None:
            result.first_drift_step = step
        token, reference_token = mx.argmax(cached).item(), mx.argmax(full).item()
        if token != reference_token:
            top_two = mx.sort(full.astype(mx.float32))[-2:].tolist()
            if top_two[1] - top_two[0] <= tolerance:
                result.ties += 1
            elif result.token_mismatch is None:
                result.token_mismatch = (step, token, reference_token)
        sequence.append(token)
        step_input = mx.array([[token]])
    return result


def run_regression(model, *, tolerance: float | None = None) -> list[ScenarioResult]:
    """Every scenario for ``model``'s sliding window."""
    return [run_scenario(model, s, tolerance=tolerance) for s in scenarios(model.args.sliding_window)]


# -- models -------------------------------------------------------------------------------


def randomize_sinks(model, seed: int = 0) -> None:
    """Give every attention layer seeded non-zero sinks (mlx-lm initialises zeros)."""
    import mlx.core as mx

    mx.random.seed(seed)
    for layer in model.model.layers:
        attn = layer.self_attn
        attn.sinks = mx.random.normal(attn.sinks.shape).astype(attn.sinks.dtype)
    mx.eval(model.parameters())


def build_tiny_gpt_oss(config: dict[str, Any] | None = None, seed: int = TINY_GPT_OSS_SEED):
    """The built-in tiny gpt-oss (or another small ``config``), seeded, in eval mode."""
    model = reload.build_model(config or TINY_GPT_OSS, seed)
    randomize_sinks(model, seed)
    return model


def random_parameter_count(config: dict[str, Any]) -> int:
    """Parameters of the gpt-oss architecture ``config`` describes, without allocating them.

    MLX is lazy: building the module creates unevaluated random arrays, whose
    sizes are known for free.
    """
    from mlx.utils import tree_flatten
    from mlx_lm.models import gpt_oss

    model = gpt_oss.Model(gpt_oss.ModelArgs.from_dict(config))
    return sum(v.size for _, v in tree_flatten(model.parameters()))


# -- the base -------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(read_config_bytes(path))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


# -- the entry point the CLI calls -------------------------------------------------------------


def gpt_oss_findings(
    config_path: Path | None,
    config: dict[str, Any] | None,
    *,
    base_model: Path | None = None,
    base: reload.Base | None = None,
) -> tuple[list[Finding], list[str]]:
    """Run the regression for one adapter, or for the built-in tiny gpt-oss.

    ``base`` is the resolved base (from the shared base lookup); without it,
    :func:`adapter_guard.mlx.reload.find_base` looks from ``base_model`` and
    the adapter. ``config_path`` None: no adapter; the base is used when it is
    a gpt-oss base, otherwise the built-in :data:`TINY_GPT_OSS`. With an
    adapter and no gpt-oss base, there are no findings and no report lines
    (the caller decides what that means). A base whose config asks to run code
    it ships is never loaded (AG604). The adapter is applied with stock
    ``load_adapters`` and put in eval mode (left in training mode, dropout
    would make every step drift: the upstream bug).

    Returns ``(findings, report lines)``: AG601 per scenario that drifts,
    AG602 per scenario that raised, AG603 when the run was skipped, AG604
    when the base was refused. Report
    lines name the base and give, per scenario, prefill, new tokens, steps
    and max logit difference. Never raises: anything unexpected is one AG602.
    """
    path = str(config_path) if config_path is not None else BUILTIN_PATH
    try:
        return _gpt_oss_findings(config_path, config, base_model, base, path)
    except Exception as exc:  # never a traceback: the CLI prints findings
        message = f"gpt-oss regression failed unexpectedly: {_one_line(exc)}"
        return [Finding("AG602", path, message)], [message]


def _is_gpt_oss(base: reload.Base) -> bool:
    base_config = _read_json(base.path / "config.json") if isinstance(base, reload.BaseModelSource) else None
    return isinstance(base_config, dict) and base_config.get("model_type") == "gpt_oss"


def _skipped(path: str, message: str) -> tuple[list[Finding], list[str]]:
    message = f"gpt-oss regression skipped: {message}"
    return [Finding("AG603", path, message)], [message]


def _gpt_oss_findings(
    config_path: Path | None,
    config: dict[str, Any] | None,
    base_model: Path | None,
    base: reload.Base | None,
    path: str,
) -> tuple[list[Finding], list[str]]:
    if config_path is None:
        if base is None:
            base = reload.find_base(None, None, base_model)
        if not _is_gpt_oss(base):
            base = None  # not a gpt-oss base: the built-in one
    else:
        if config is None:
            config = _read_json(Path(config_path))
            if not isinstance(config, dict):
                return [], []  # the lint reports the unreadable config
        if base is None:
            base = reload.find_base(config, Path(config_path).parent, base_model)
        if not _is_gpt_oss(base):
            return [], []

    try:
        import mlx.core  # noqa: F401
        import mlx_lm  # noqa: F401
    except ImportError as exc:
        return _skipped(path, f"needs mlx and mlx-lm (pip install 'adapter-guard[mlx]'): {_one_line(exc)}")

    if base is None:
        model = build_tiny_gpt_oss()
        base_desc = f"built-in tiny gpt-oss (seed {TINY_GPT_OSS_SEED})"
    else:
        base_desc = base.describe()
        if not base.has_weights:
            count = random_parameter_count(_read_json(base.path / "config.json"))
            if count > MAX_RANDOM_PARAMETERS:
                return _skipped(
                    path,
                    f"base {base.path} has no weights and its config has {count:,} parameters, too many to build "
                    f"with random weights (limit {MAX_RANDOM_PARAMETERS:,}); point --base-model at a smaller config",
                )
        try:
            model, _, random_weights = reload.load_base(base)
        except reload.BaseRefused as exc:
            message = f"gpt-oss regression skipped: {exc}"
            return [Finding("AG604", path, message)], [message]
        if random_weights:
            randomize_sinks(model)

    adapter_desc = "no adapter"
    if config_path is not None:
        adapter_dir = Path(config_path).parent
        try:
            model = reload.reload_adapter(model, adapter_dir)
        except Exception as exc:
            return _skipped(path, f"the adapter does not apply to {base_desc}: {_one_line(exc)}")
        adapter_desc = f"adapter {adapter_dir}"

    results = run_regression(model)
    window = model.args.sliding_window
    tolerance = next((r.tolerance for r in results if r.steps), math.inf)
    lines = [
        f"gpt-oss regression: {base_desc}, {adapter_desc}, window {window}, "
        f"{len(model.layers)} layers, tolerance {tolerance:g}"
    ]
    lines += [f"gpt-oss {r.summary()}" for r in results]
    findings = [_finding(path, r, window) for r in results if not r.passed]
    return findings, lines


def _finding(path: str, result: ScenarioResult, window: int) -> Finding:
    s = result.scenario
    where = f"scenario {s.name} (prefill {s.prefill}, {s.new_tokens} new tokens, window {window})"
    if result.error:
        return Finding("AG602", path, f"{where} raised {result.error}")
    parts = []
    if result.max_diff > result.tolerance:
        step = result.first_drift_step
        parts.append(
            f"|logit difference| first exceeds tolerance {result.tolerance:g} at step {step} "
            f"(key length {s.prefill + step - 1}), max {result.max_diff:.3g} at step {result.worst_step}"
        )
    if result.token_mismatch:
        step, cached, recompute = result.token_mismatch
        parts.append(f"greedy token differs at step {step}: cached {cached}, recompute {recompute}")
    return Finding("AG601", path, f"{where}: cached decoding drifts from a full recompute: " + "; ".join(parts))
