"""Which writer made an adapter directory, from what was already read.

The evidence, strongest first (docs: the format reference, §5): the weights
file's name, the tensors' leaf names and prefix, then the config's keys. Pure:
it looks at the directory listing, the safetensors header(s) and the config the
engine has read anyway, and nothing else.
"""

from __future__ import annotations

from enum import Enum

from ..readers import MLX_WEIGHTS, NPZ_WEIGHTS, PEFT_BIN_WEIGHTS, PEFT_WEIGHTS, AdapterFiles
from ..record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the lint path
if TYPE_CHECKING:
    from typing import Any


class AdapterFormat(str, Enum):
    MLX_LM = "mlx-lm"  # mlx-lm >= 0.19, and unsloth's MLX adapters (which also write peft_type)
    MLX_LM_LEGACY = "mlx-lm-pre-0.19"  # mlx-lm 0.6 - 0.18: lora_layers, use_dora
    MLX_VLM = "mlx-vlm"  # mlx-vlm >= 0.6: full-path keys, num_layers -1
    MLX_VLM_LEGACY = "mlx-vlm-legacy"  # mlx-vlm <= 0.5: {rank, alpha, dropout}, .A/.B tensors
    MLX_NPZ = "adapters-npz"  # mlx-examples lora/ or mlx-lm < 0.6: adapters.npz
    PEFT_LORA = "peft-lora"  # Hugging Face PEFT LoRA, DoRA, rsLoRA
    PEFT_OTHER = "peft-other"  # another PEFT method (peft_type other than LORA)
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


class Detection(Record):
    __slots__ = ("format", "evidence", "decider")

    def __init__(self, format: AdapterFormat, evidence: str, decider: str = "") -> None:
        self.format = format
        #: What decided it, in words, for --verbose and for the unknown-format finding.
        self.evidence = evidence
        #: For UNKNOWN: what would decide it.
        self.decider = decider


#: Keys mlx-vlm (0.6+) writes, and nothing else.
MLX_VLM_KEYS = frozenset({"fine_tune_type", "num_layers", "lora_parameters", "base_quantization"})
#: mlx-vlm <= 0.5 wrote exactly these.
MLX_VLM_LEGACY_KEYS = frozenset({"rank", "alpha", "dropout"})
#: Keys only PEFT's LoraConfig writes (with peft_type).
PEFT_SIGNATURE = ("r", "lora_alpha", "target_modules")
#: Where a VLM's module paths start (mlx-vlm keys and tensor names are from the VLM root).
VLM_PREFIXES = ("language_model.", "vision_tower.", "vision_model.")
PEFT_LEAVES = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector")


def detect(config: dict[str, Any] | None, files: AdapterFiles) -> Detection:
    """The format of one adapter directory. ``config`` is None when there is no (readable) config."""
    has = files.entries
    peft_weights = [n for n in (PEFT_WEIGHTS, PEFT_BIN_WEIGHTS) if n in has]
    if peft_weights and MLX_WEIGHTS in has:
        return Detection(
            AdapterFormat.UNKNOWN,
            f"both `{peft_weights[0]}` (PEFT's name) and `{MLX_WEIGHTS}` (MLX's name) are present",
            f"keep only the file of the format this adapter is in: PEFT loads `{PEFT_WEIGHTS}`, "
            f"mlx-lm and mlx-vlm load `{MLX_WEIGHTS}`",
        )
    config = config if isinstance(config, dict) else None
    peft_type = config.get("peft_type") if config is not None else None
    mlx_leaves = _mlx_leaves(files)
    if peft_weights or (config is not None and not mlx_leaves and _peft_config(config)):
        if isinstance(peft_type, str) and peft_type.upper() != "LORA":
            return Detection(AdapterFormat.PEFT_OTHER, f"peft_type is {peft_type!r}")
        why = f"`{peft_weights[0]}`" if peft_weights else "PEFT config keys (r, lora_alpha, target_modules)"
        return Detection(AdapterFormat.PEFT_LORA, f"{why} with a LoRA config")
    if MLX_WEIGHTS not in has and NPZ_WEIGHTS in has and not _has_mlx_config(config):
        return Detection(AdapterFormat.MLX_NPZ, f"`{NPZ_WEIGHTS}` and no `{MLX_WEIGHTS}`")
    shapes = files.weights[MLX_WEIGHTS].shapes if MLX_WEIGHTS in files.weights else None
    if config is None:
        if MLX_WEIGHTS in has:
            return Detection(AdapterFormat.MLX_LM, f"`{MLX_WEIGHTS}` without a config")
        return Detection(AdapterFormat.UNKNOWN, "no config and no weights file", "an adapter_config.json")
    if _legacy_vlm(config, shapes):
        return Detection(AdapterFormat.MLX_VLM_LEGACY, "top-level rank/alpha/dropout only (mlx-vlm <= 0.5)")
    # A file that spells both (`--fix --target mlx-lm@0.18` writes lora_layers beside num_layers, use_dora
    # beside fine_tune_type) is a current one that older releases read too.
    if ("lora_layers" in config and "num_layers" not in config) or ("use_dora" in config and "fine_tune_type" not in config):
        return Detection(AdapterFormat.MLX_LM_LEGACY, "`lora_layers` or `use_dora` (mlx-lm before 0.19)")
    if _new_vlm(config, shapes):
        return Detection(AdapterFormat.MLX_VLM, "only mlx-vlm's keys, with full module paths (mlx-vlm >= 0.6)")
    return Detection(AdapterFormat.MLX_LM, "an mlx-lm style config")


def _peft_config(config: dict[str, Any]) -> bool:
    """PEFT's signature: peft_type and one of r/lora_alpha/target_modules (or two of those), and none of
    MLX's keys: unsloth's MLX adapters write peft_type too."""
    if _has_mlx_config(config):
        return False
    own = sum(k in config for k in PEFT_SIGNATURE)
    return ("peft_type" in config and own >= 1) or own >= 2


def _mlx_leaves(files: AdapterFiles) -> bool:
    """Whether adapters.safetensors holds MLX factors (lora_a / lora_b / m) and no PEFT ones."""
    weights = files.weights.get(MLX_WEIGHTS)
    if weights is None or not weights.shapes:
        return False
    names = weights.shapes
    # A pass that stops at the first MLX factor (usually the first name); then searches
    # in C: the newline joining the names is in no needle, so no match spans two names,
    # and names without a capital A or B (MLX's are lower case) hold neither PEFT factor.
    if not any(name.rpartition(".")[2] in _MLX_FACTORS for name in names):
        return False
    joined = "\n".join(names)
    if "A" not in joined and "B" not in joined:
        return True
    return ".lora_A." not in joined and ".lora_B." not in joined


_MLX_FACTORS = ("lora_a", "lora_b")


def _has_mlx_config(config: dict[str, Any] | None) -> bool:
    if config is None:
        return False
    return any(k in config for k in ("lora_parameters", "fine_tune_type", "num_layers", "lora_layers")) or any(
        k.startswith("unsloth_mlx") for k in config
    )


def _legacy_vlm(config: dict[str, Any], shapes: dict[str, tuple[int, ...]] | None) -> bool:
    """{rank, alpha, dropout} (mlx-vlm 0.7 still loads it with extra keys), or a top-level rank with .A/.B tensors."""
    if "rank" not in config or "lora_parameters" in config:
        return False
    old_leaves = shapes is not None and any(name.endswith((".A", ".B")) for name in shapes)
    return old_leaves or (set(config) <= MLX_VLM_LEGACY_KEYS and not shapes)


def _new_vlm(config: dict[str, Any], shapes: dict[str, tuple[int, ...]] | None) -> bool:
    """Only mlx-vlm's few keys (mlx-lm dumps its whole argument list), num_layers -1, and a VLM's paths."""
    if not set(config) <= MLX_VLM_KEYS or config.get("num_layers", -1) != -1:
        return False
    lora = config.get("lora_parameters")
    keys = lora.get("keys") if isinstance(lora, dict) else None
    if isinstance(keys, list) and any(isinstance(k, str) and k.startswith(VLM_PREFIXES) for k in keys):
        return True
    return shapes is not None and any(n.startswith(VLM_PREFIXES) for n in shapes)
