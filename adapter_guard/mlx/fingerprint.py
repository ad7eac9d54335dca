"""Behavioural fingerprints: what each LoRA module adds, on a fixed probe input.

A wrong ``scale`` reloads without any error and silently changes behaviour.
The fingerprint catches it: at save time, for every LoRA module, the output
delta (module output minus its base layer's output) on a seeded probe input is
summarised in a few numbers; after a stock reload the delta is recomputed and
compared.

Where it lives: a sidecar ``adapter_fingerprint.json`` beside
``adapters.safetensors``. ``adapter_config.json`` stays exactly what stock
mlx-lm and PEFT read, and the sidecar is ignored by both.

What is recorded, per module path::

    {"kind": "LoRALinear", "scale": 2.0, "shape": [2, 32],
     "norm": 1.83, "sample": [16 floats]}

``norm`` is the L2 norm of the whole delta, ``sample`` 16 evenly spaced values
of it. The delta does not depend on the base weights (``y + s·z − y``), so a
smoke test on a random-weight base compares against a fingerprint recorded on
the real one. DoRA renormalises by the base weight's norm, so for DoRA modules
the fingerprint is the low-rank term ``scale · (x·A)·B`` instead, which is also
base-independent and linear in ``scale``.

Tolerance: a module matches when its norm and its sample each lie within
``RTOL`` = 1e-3 of the recorded ones, relative to the recorded norm (plus
``ATOL`` = 1e-6 for deltas near zero). Float32 reductions on another device
differ by ~1e-6; any real change of scale or factors is orders larger.

The probe input comes from a pure-Python SplitMix64 stream, so it is identical
across machines, devices and mlx versions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FINGERPRINT_FILE = "adapter_fingerprint.json"
FORMAT = "adapter-guard/fingerprint"
VERSION = 1
PROBE_SEED = 0
PROBE_ROWS = 2
SAMPLE_SIZE = 16
RTOL = 1e-3
ATOL = 1e-6

_MASK64 = (1 << 64) - 1


class FingerprintError(ValueError):
    """The sidecar is unreadable or not a fingerprint this version understands."""


# -- the probe ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def probe_uniform(count: int, stream: str, seed: int = PROBE_SEED) -> tuple[float, ...]:
    """``count`` floats in [-1, 1) from SplitMix64, seeded by ``seed`` and a stream name."""
    state = (seed * 0x9E3779B97F4A7C15 + zlib.crc32(stream.encode())) & _MASK64
    out = []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
        out.append((z >> 11) * 2.0**-52 - 1.0)
    return tuple(out)


def _probe_matrix(rows: int, dims: int, seed: int):
    import mlx.core as mx

    return mx.array(probe_uniform(rows * dims, f"x{dims}", seed), dtype=mx.float32).reshape(rows, dims)


def _probe_ids(count: int, vocab: int, seed: int):
    import mlx.core as mx

    values = probe_uniform(count, f"ids{vocab}", seed)
    return mx.array([min(int((u + 1.0) / 2.0 * vocab), vocab - 1) for u in values], dtype=mx.uint32)


def module_delta(module, seed: int = PROBE_SEED):
    """What ``module`` adds on the probe input (flattened, float32), or None for an unknown kind.

    The module is put in eval mode for the call (dropout off) and restored.
    """
    import mlx.core as mx
    from mlx_lm.tuner.dora import DoRAEmbedding, DoRALinear
    from mlx_lm.tuner.lora import LoRAEmbedding, LoRALinear, LoRASwitchLinear

    a, b = module.lora_a, module.lora_b
    was_training = module.training
    module.eval()
    try:
        if isinstance(module, DoRALinear):
            x = _probe_matrix(PROBE_ROWS, a.shape[0], seed)
            delta = module.scale * ((x @ a) @ b)
        elif isinstance(module, DoRAEmbedding):
            ids = _probe_ids(PROBE_ROWS * 4, a.shape[0], seed)
            delta = module.scale * (a[ids] @ b)
        elif isinstance(module, LoRALinear):
            x = _probe_matrix(PROBE_ROWS, a.shape[0], seed)
            delta = module(x) - module.linear(x)
        elif isinstance(module, LoRASwitchLinear):
            experts, dims = a.shape[0], a.shape[-1]
            # Every probe row goes through every expert, shaped as SwitchGLU calls it.
            x = _probe_matrix(PROBE_ROWS, dims, seed).reshape(PROBE_ROWS, 1, 1, dims)
            indices = mx.broadcast_to(mx.arange(experts, dtype=mx.uint32), (PROBE_ROWS, experts))
            delta = module(x, indices) - module.linear(x, indices)
        elif isinstance(module, LoRAEmbedding):
            ids = _probe_ids(PROBE_ROWS * 4, a.shape[0], seed)
            delta = module(ids) - module.embedding(ids)
        else:
            return None
        delta = delta.astype(mx.float32)
        mx.eval(delta)
        return delta
    finally:
        module.train(was_training)


def summarize(delta) -> dict[str, Any]:
    """The few numbers kept per module: shape, L2 norm, and evenly spaced values."""
    import mlx.core as mx

    flat = delta.reshape(-1)
    n = flat.size
    positions = sorted({round(i * (n - 1) / (SAMPLE_SIZE - 1)) for i in range(SAMPLE_SIZE)}) if n > 1 else [0]
    sample = flat[mx.array(positions)].tolist() if n else []
    return {"shape": list(delta.shape), "norm": float(mx.sqrt(mx.sum(flat * flat)).item()), "sample": sample}


# -- recording -------------------------------------------------------------------------------


def record(model, paths=None, *, weights: bytes | None = None, seed: int = PROBE_SEED) -> dict[str, Any]:
    """The fingerprint document for ``model``'s LoRA modules (or those in ``paths``).

    ``weights``, the bytes of ``adapters.safetensors``, ties the fingerprint to
    that file, so a retrained adapter with a stale sidecar is named as such.
    """
    from .live import find_lora_modules, read_scale

    modules = dict(model.named_modules())
    entries: dict[str, Any] = {}
    for info in find_lora_modules(model):
        if paths is not None and info.path not in paths:
            continue
        module = modules[info.path]
        delta = module_delta(module, seed)
        if delta is None:
            continue
        entry = {"kind": info.kind, "scale": read_scale(module)[0]}
        entry.update(summarize(delta))
        entries[info.path] = entry
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "probe": {"generator": "splitmix64", "seed": seed, "rows": PROBE_ROWS},
        "tolerance": {"rtol": RTOL, "atol": ATOL},
    }
    if weights is not None:
        doc["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    doc["modules"] = entries
    return doc


def dumps(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, allow_nan=False) + "\n").encode("utf-8")


def load(adapter_dir: str | Path) -> dict[str, Any] | None:
    """The sidecar in ``adapter_dir``, None when there is none; FingerprintError when it is bad."""
    path = Path(adapter_dir) / FINGERPRINT_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FingerprintError(f"{FINGERPRINT_FILE} is unreadable: {exc.strerror or exc}") from None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FingerprintError(f"{FINGERPRINT_FILE} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FingerprintError(f"{FINGERPRINT_FILE} is not an adapter-guard fingerprint")
    if doc.get("version") != VERSION:
        raise FingerprintError(f"{FINGERPRINT_FILE} has version {doc.get('version')!r}; this adapter-guard reads {VERSION}")
    modules = doc.get("modules")
    if not isinstance(modules, dict) or not all(_valid_entry(e) for e in modules.values()):
        raise FingerprintError(f"{FINGERPRINT_FILE} has a malformed `modules` table")
    probe = doc.get("probe")
    if not isinstance(probe, dict) or probe.get("rows") != PROBE_ROWS or not isinstance(probe.get("seed"), int):
        raise FingerprintError(f"{FINGERPRINT_FILE} uses a probe this adapter-guard does not know: {probe!r}")
    return doc


def _valid_entry(entry) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("norm"), (int, float))
        and isinstance(entry.get("sample"), list)
        and all(isinstance(v, (int, float)) for v in entry["sample"])
    )


def weights_match(doc: dict[str, Any], weights: bytes) -> bool:
    recorded = doc.get("weights_sha256")
    return recorded is None or recorded == hashlib.sha256(weights).hexdigest()


# -- comparing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    ok: bool
    #: new ≈ factor × recorded, when the new delta is a multiple of the recorded one.
    factor: float | None
    #: Relative distance of the new delta from the recorded one.
    error: float


def compare(recorded: dict[str, Any], current: dict[str, Any]) -> Comparison:
    """Compare a recorded module summary with a recomputed one."""
    old, new = recorded["sample"], current["sample"]
    old_norm, new_norm = float(recorded["norm"]), float(current["norm"])
    if len(old) != len(new) or list(recorded.get("shape", current["shape"])) != list(current["shape"]):
        return Comparison(False, None, math.inf)
    diff = _norm([n - o for n, o in zip(new, old)])
    ref = _norm(old)
    error = max(diff / ref if ref else (0.0 if diff == 0 else math.inf), _rel(new_norm, old_norm))
    ok = diff <= RTOL * ref + ATOL and abs(new_norm - old_norm) <= RTOL * old_norm + ATOL
    if ok or ref == 0:
        return Comparison(ok, 1.0 if ok else None, error)
    factor = sum(n * o for n, o in zip(new, old)) / (ref * ref)
    residual = _norm([n - factor * o for n, o in zip(new, old)])
    linear = residual <= RTOL * _norm(new) + ATOL and abs(new_norm - abs(factor) * old_norm) <= RTOL * new_norm + ATOL
    return Comparison(False, factor if linear else None, error)


def _norm(values) -> float:
    return math.sqrt(sum(v * v for v in values))


def _rel(a: float, b: float) -> float:
    if b == 0:
        return 0.0 if a == 0 else math.inf
    return abs(a - b) / abs(b)


def mismatch_message(path: str, recorded: dict[str, Any], current: dict[str, Any], result: Comparison, scale) -> str:
    """One line naming the module and, for a linear change, the factor and the likely cause."""
    if float(current["norm"]) == 0.0:
        return f"{path}: the reloaded module adds nothing, but the recorded delta has norm {_fmt(recorded['norm'])}"
    if result.factor is None:
        return f"{path}: delta differs from the recorded one (relative error {result.error:.3g}, tolerance {RTOL:g})"
    message = f"{path}: delta is {_fmt(result.factor)}x the recorded one"
    trained = recorded.get("scale")
    if isinstance(scale, (int, float)) and isinstance(trained, (int, float)) and trained:
        if abs(result.factor - scale / trained) <= RTOL * abs(result.factor) + ATOL:
            message += f": scale in config is {_fmt(scale)}, trained with {_fmt(trained)}"
    return message


def _fmt(value: float) -> str:
    """4 significant digits, spelt like Python floats: 20.0, 0.05, 1.5e-07."""
    return repr(float(f"{float(value):.4g}"))
