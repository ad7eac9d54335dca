"""``--smoke``: reload the adapter with stock mlx-lm and check what comes back.

1. Take the resolved base (``base=``, from the shared base lookup), or find it
   locally with :func:`adapter_guard.mlx.reload.find_base`; never the network.
   A base whose ``config.json`` asks to run code it ships (``model_file``,
   ``auto_map``) is refused before mlx-lm sees it (AG511). Without weights, the
   architecture is built from ``config.json`` with seeded random weights, and
   the result says so.
2. Reload with stock ``mlx_lm.tuner.utils.load_adapters``, then ``model.eval()``.
3. Check, each under its own code: the reload succeeds (AG502); every tensor
   in the file is bound, with identical values (AG503); switch and embedding
   modules come back as LoRA classes (AG504); rank, scale and dropout match the
   config (AG505); outputs are finite (AG506); two eval runs agree (AG507);
   the adapter changes the output (AG508); the behavioural fingerprint still
   matches (AG509); every recreated module has tensors in the file (AG510).

Never raises: anything unexpected becomes a one-line AG502 finding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import lfs
from ..findings import Finding
from . import fingerprint
from . import reload
from .reload import BaseModelSource

WEIGHTS_FILE = "adapters.safetensors"
ADAPTER_LEAVES = frozenset({"lora_a", "lora_b", "m"})
PROBE_TOKENS = 16

# Base classes mlx-lm turns into LoRA classes, and what they should come back as.
_LORA_CLASS_FOR = {
    "Linear": "LoRALinear",
    "QuantizedLinear": "LoRALinear",
    "SwitchLinear": "LoRASwitchLinear",
    "QuantizedSwitchLinear": "LoRASwitchLinear",
    "Embedding": "LoRAEmbedding",
    "QuantizedEmbedding": "LoRAEmbedding",
}


@dataclass
class SmokeResult:
    findings: list[Finding] = field(default_factory=list)
    #: Report lines: the base used, whether its weights were random, the fingerprint outcome.
    notes: list[str] = field(default_factory=list)
    base: BaseModelSource | None = None


def smoke_findings(
    config_path: Path, config: dict, *, base_model: Path | None, require: bool, base: reload.Base | None = None
) -> list[Finding]:
    """The smoke test's findings for one ``adapter_config.json`` (see :func:`run_smoke`)."""
    return run_smoke(config_path, config, base_model=base_model, require=require, base=base).findings


def run_smoke(
    config_path: Path,
    config: Mapping[str, Any],
    *,
    base_model: Path | None = None,
    require: bool = False,
    base: reload.Base | None = None,
) -> SmokeResult:
    """Reload the adapter beside ``config_path`` with stock mlx-lm and check it. Never raises.

    ``base`` is the resolved base (a :class:`~adapter_guard.mlx.reload.BaseModelSource`,
    or :class:`~adapter_guard.mlx.reload.NoBase` with the reason); without it,
    :func:`~adapter_guard.mlx.reload.find_base` looks from ``base_model`` and the config.
    """
    path = str(config_path)
    try:
        if base is None:
            base = reload.find_base(config, Path(config_path).parent, base_model)
        return _Smoke(Path(config_path), config, path).run(base, require)
    except Exception as exc:  # noqa: BLE001 - the contract is "a finding, never a traceback"
        return SmokeResult([Finding("AG502", path, f"smoke test failed unexpectedly: {one_line(exc)}")])


def one_line(exc: BaseException) -> str:
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Smoke:
    def __init__(self, config_path: Path, config: Mapping[str, Any], path: str):
        self.adapter_dir = config_path.parent
        self.config = config
        self.path = path
        self.result = SmokeResult()
        self.extra: dict[str, Any] = {}

    def emit(self, code: str, message: str, json_path=None) -> None:
        self.result.findings.append(Finding(code, self.path, message, json_path=json_path, extra=dict(self.extra)))

    def note(self, line: str) -> None:
        self.result.notes.append(f"smoke: {line}")

    def run(self, source: reload.Base, require: bool) -> SmokeResult:
        if isinstance(source, reload.NoBase):
            hint = " (--require-smoke makes this a failure)" if require else ""
            self.emit("AG501", f"smoke skipped: base model not available locally: {source.reason}{hint}")
            return self.result
        weights = self.adapter_dir / "adapters.safetensors"
        if lfs.read_pointer(weights) is not None:  # a pointer-only checkout: there are no tensors to load
            hint = " (--require-smoke makes this a failure)" if require else ""
            self.emit("AG501", f"smoke skipped: `adapters.safetensors` is a Git LFS pointer; run {lfs.fetch_hint(weights)}{hint}")
            return self.result
        try:
            import mlx.core  # noqa: F401
            import mlx_lm  # noqa: F401
        except ImportError as exc:
            self.emit("AG501", f"smoke skipped: mlx-lm is not installed ({exc}); install adapter-guard[mlx]")
            return self.result

        self.result.base = source
        self.extra = {"base_model": str(source.path), "random_weights": not source.has_weights}
        self.note(source.describe())
        try:
            model, base_config, random_weights = reload.load_base(source)
        except reload.BaseRefused as exc:
            self.emit("AG511", f"smoke skipped: {exc}")
            return self.result
        except Exception as exc:  # noqa: BLE001
            self.emit("AG502", f"could not build the base model from {source.path}: {one_line(exc)}")
            return self.result
        if random_weights:
            self.note("random weights: shape- and delta-level checks are meaningful, absolute outputs are not")
        self.check(model, base_config)
        return self.result

    def check(self, model, base_config: Mapping[str, Any]) -> None:
        import mlx.core as mx

        tokens = probe_tokens(base_config)
        base_logits = _logits(model, tokens) if tokens is not None else None

        try:
            file_tensors = mx.load(str(self.adapter_dir / WEIGHTS_FILE))
        except Exception:  # noqa: BLE001 - stock load_adapters reports the same file just below
            file_tensors = None
        try:
            model = reload.reload_adapter(model, self.adapter_dir)
        except Exception as exc:  # noqa: BLE001
            self.emit("AG502", f"stock load_adapters failed: {one_line(exc)}")
            # load_adapters wraps the modules before it vets the tensors, so
            # the model in hand shows which tensors had nowhere to go.
            if file_tensors is not None and "incompatible tensors" in str(exc):
                self.check_binding(model, file_tensors, values=False)
            return
        if file_tensors is None:  # unreadable to us, yet loaded by mlx-lm: nothing to compare against
            self.emit("AG502", f"{WEIGHTS_FILE} could not be read back for the checks")
            return

        self.check_binding(model, file_tensors, values=True)
        self.check_unbound_modules(model, file_tensors)
        self.check_metadata(model, file_tensors)
        if tokens is not None:
            self.check_outputs(model, tokens, base_logits, file_tensors)
        else:
            self.note("no vocab_size in the base config.json: output checks skipped")
        self.check_fingerprint(model)

    # -- AG503 / AG504 ---------------------------------------------------------------------

    def check_binding(self, model, file_tensors: Mapping[str, Any], *, values: bool) -> None:
        import mlx.core as mx
        from mlx.utils import tree_flatten

        params = dict(tree_flatten(model.parameters()))
        modules = dict(model.named_modules())
        full = self.config.get("fine_tune_type") == "full"
        for module_path, leaves in _by_module(file_tensors).items():
            module = modules.get(module_path)
            base_kind = type(module).__name__ if module is not None else None
            # A full fine-tune saves whole weights: stock load_adapters loads them into the plain modules.
            if not full and module is not None and not _is_lora(module) and base_kind in _LORA_CLASS_FOR:
                expected = _LORA_CLASS_FOR[base_kind]
                if "m" in leaves:
                    expected = expected.replace("LoRA", "DoRA")
                self.emit(
                    "AG504",
                    f"{module_path} is {base_kind} after reload, not {expected}: its {_tensors(leaves)} "
                    "nowhere to go (is the module in lora_parameters.keys and num_layers?)",
                )
                continue
            problems = []
            for leaf in sorted(leaves):
                name = f"{module_path}.{leaf}" if module_path else leaf
                tensor, param = file_tensors[name], params.get(name)
                if not full and leaf not in ADAPTER_LEAVES:
                    problems.append(f"{leaf} is not an adapter tensor (lora_a, lora_b, m)")
                elif param is None:
                    problems.append(f"{leaf} is not a parameter of the reloaded model")
                elif tuple(param.shape) != tuple(tensor.shape):
                    problems.append(f"{leaf} has shape {tuple(tensor.shape)} in the file, {tuple(param.shape)} in the model")
                elif values and not bool(mx.array_equal(param, tensor).item()):
                    problems.append(f"{leaf} in the model differs from the file")
            if problems:
                self.emit("AG503", f"{module_path or '(top level)'}: {'; '.join(problems)}")

    # -- AG510 ------------------------------------------------------------------------------------

    def check_unbound_modules(self, model, file_tensors: Mapping[str, Any]) -> None:
        from .live import find_lora_modules

        in_file = set(_by_module(file_tensors))
        missing = [m.path for m in find_lora_modules(model) if m.path not in in_file]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            self.emit(
                "AG510",
                f"{len(missing)} module(s) recreated by the config have no tensors in {WEIGHTS_FILE} "
                f"and run with untrained initial values: {shown}",
            )

    # -- AG505 ------------------------------------------------------------------------------------

    def check_metadata(self, model, file_tensors: Mapping[str, Any]) -> None:
        from .live import find_lora_modules

        params = self.config.get("lora_parameters")
        if not isinstance(params, Mapping):
            return
        in_file = set(_by_module(file_tensors))
        modules = [m for m in find_lora_modules(model) if m.path in in_file]
        for name in ("rank", "scale", "dropout"):
            expected = params.get(name)
            if isinstance(expected, bool) or not isinstance(expected, (int, float)):
                continue
            wrong: dict[Any, list[str]] = {}
            for module in modules:
                actual = getattr(module, name)
                if actual is None or not math.isclose(float(actual), float(expected), rel_tol=1e-9, abs_tol=1e-12):
                    wrong.setdefault(actual, []).append(module.path)
            for actual, paths in wrong.items():
                where = paths[0] if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more modules"
                self.emit(
                    "AG505",
                    f"{name} is {actual} after reload in {where}, but the config says {expected}",
                    json_path=("lora_parameters", name),
                )

    # -- AG506 / AG507 / AG508 ----------------------------------------------------------------------

    def check_outputs(self, model, tokens, base_logits, file_tensors: Mapping[str, Any]) -> None:
        import mlx.core as mx

        first = _logits(model, tokens)
        finite = mx.isfinite(first)
        if not bool(mx.all(finite).item()):
            bad = int((~finite).sum().item())
            self.emit("AG506", f"{bad} of {first.size} logits are NaN or Inf on the probe input")
            return
        second = _logits(model, tokens)
        if not bool(mx.array_equal(first, second).item()):
            gap = float(mx.max(mx.abs(first - second)).item())
            self.emit(
                "AG507",
                f"two eval-mode runs differ by up to {gap:.3g}: dropout or another training-mode behaviour is still active",
            )
        lora_b = [t for name, t in file_tensors.items() if name.endswith(".lora_b")]
        if lora_b and all(not bool(mx.any(t != 0).item()) for t in lora_b):
            self.emit("AG508", "untrained adapter: every lora_b in adapters.safetensors is zero, so it adds nothing")
        elif base_logits is not None and bool(mx.array_equal(first, base_logits).item()):
            self.emit("AG508", "the adapter does not change the model's output on the probe input")

    # -- AG509 ------------------------------------------------------------------------------------

    def check_fingerprint(self, model) -> None:
        try:
            doc = fingerprint.load(self.adapter_dir)
        except fingerprint.FingerprintError as exc:
            self.emit("AG509", str(exc))
            return
        if doc is None:
            self.note(f"no {fingerprint.FINGERPRINT_FILE}: scale cannot be verified behaviourally")
            return
        if not fingerprint.weights_match(doc, (self.adapter_dir / WEIGHTS_FILE).read_bytes()):
            self.emit(
                "AG509",
                f"{fingerprint.FINGERPRINT_FILE} was recorded for a different {WEIGHTS_FILE}; "
                "re-save the adapter to record a fresh one",
            )
            return

        from .live import read_scale

        modules = dict(model.named_modules())
        seed = doc["probe"]["seed"]
        groups: dict[tuple[str, bool], list[str]] = {}
        matched = 0
        for module_path, recorded in doc["modules"].items():
            module = modules.get(module_path)
            delta = fingerprint.module_delta(module, seed) if module is not None and _is_lora(module) else None
            if delta is None:
                groups.setdefault(("recorded in the fingerprint but not a LoRA module after reload", False), []).append(
                    module_path
                )
                continue
            current = fingerprint.summarize(delta)
            outcome = fingerprint.compare(recorded, current)
            if outcome.ok:
                matched += 1
                continue
            message = fingerprint.mismatch_message(module_path, recorded, current, outcome, read_scale(module)[0])
            detail = message[len(module_path) + 2 :]
            groups.setdefault((detail, "scale in config" in detail), []).append(module_path)
        for (detail, about_scale), paths in groups.items():
            where = paths[0] if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more modules)"
            self.emit("AG509", f"{where}: {detail}", json_path=("lora_parameters", "scale") if about_scale else None)
        self.note(f"fingerprint: {matched} of {len(doc['modules'])} modules match (rtol {fingerprint.RTOL:g})")


def _tensors(leaves) -> str:
    """``lora_a, lora_b have`` / ``weight has``: the subject of a sentence about some tensors."""
    names = sorted(leaves)
    return f"{', '.join(names)} {'has' if len(names) == 1 else 'have'}"


def probe_tokens(base_config: Mapping[str, Any]):
    """A fixed batch of token ids inside the base model's vocabulary, or None."""
    import mlx.core as mx

    vocab = base_config.get("vocab_size")
    text_config = base_config.get("text_config")
    if not isinstance(vocab, int) and isinstance(text_config, Mapping):
        vocab = text_config.get("vocab_size")
    if not isinstance(vocab, int) or isinstance(vocab, bool) or vocab <= 0:
        return None
    return mx.array(fingerprint._probe_ids(PROBE_TOKENS, vocab, fingerprint.PROBE_SEED)).reshape(1, PROBE_TOKENS)


def _logits(model, tokens):
    import mlx.core as mx

    out = model(tokens).astype(mx.float32)
    mx.eval(out)
    return out


def _by_module(tensors: Mapping[str, Any]) -> dict[str, set[str]]:
    """``{module path: leaves}``, in layer order (``mx.load`` returns no particular order)."""
    from .live import path_key

    grouped: dict[str, set[str]] = {}
    for name in sorted(tensors, key=path_key):
        module, _, leaf = name.rpartition(".")
        grouped.setdefault(module, set()).add(leaf)
    return grouped


def _is_lora(module) -> bool:
    try:
        return "lora_a" in module and "lora_b" in module
    except TypeError:
        return False
