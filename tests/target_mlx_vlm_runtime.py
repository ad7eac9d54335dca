"""mlx-vlm's own loader, run by another mlx-vlm release in a venv of its own (tests/runtime_venvs.py).

The tiny LLaVA of ``vlm_writers`` is written once to a base folder (``config.json`` and
``model.safetensors``, this environment's seeded weights), so every release builds the very same
base. ``old_mlx_vlm_load`` then runs ``LOAD_SCRIPT`` with that release: it builds the base from
the folder the way ``mlx_vlm.utils.load_model`` does, calls the release's own
``apply_lora_layers`` on each adapter folder, and answers with one JSON line per batch. Each
outcome is a ``vlm_writers.Outcome``: the error, the tensors that bound to nothing (MLX's
``load_weights(strict=False)`` says nothing about them), and the logit difference to the
writer's live model.

Releases before 0.7.8 keep ``apply_lora_layers`` in ``mlx_vlm.trainer.utils``; 0.7.8 moved it to
``mlx_vlm.trainer.peft.utils``. The script takes whichever the release has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import runtime_venvs
import vlm_writers

#: The releases the tests run, besides the installed one (0.7.10): the last of the old schema,
#: and the last before the 0.7.8 loader (full fine-tunes, weights.safetensors, base_quantization).
MLX_VLM_0_5 = "mlx-vlm==0.5.0"
MLX_VLM_0_7_6 = "mlx-vlm==0.7.6"

LOAD_SCRIPT = """
import json, sys
import numpy as np
import mlx.core as mx
from mlx.utils import tree_flatten
from safetensors import safe_open
from mlx_vlm.utils import get_model_and_args, update_module_configs
try:
    from mlx_vlm.trainer.peft.utils import apply_lora_layers
except ImportError:
    from mlx_vlm.trainer.utils import apply_lora_layers
base_dir, jobs, tokens = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
config = json.load(open(f"{base_dir}/config.json"))

def fresh_base():
    arch, _ = get_model_and_args(config=config)
    modules = ["text", "vision", "perceiver", "projector", "audio"]
    model_config = update_module_configs(arch.ModelConfig.from_dict(config), arch, config, modules)
    model = arch.Model(model_config)
    model.load_weights(f"{base_dir}/model.safetensors", strict=True)
    model.eval()
    return model

outcomes = []
for adapter_dir, live in jobs:
    model = fresh_base()
    try:
        model = apply_lora_layers(model, adapter_dir)
    except Exception as exc:
        outcomes.append({"error_type": type(exc).__name__, "error": str(exc)})
        continue
    model.eval()
    paths = {k for k, _ in tree_flatten(model.parameters())}
    with safe_open(f"{adapter_dir}/adapters.safetensors", "numpy") as f:
        unbound = sorted(k for k in f.keys() if k not in paths)
    diff = None
    if live is not None:
        out = model.language_model(mx.array([tokens]))
        logits = np.array(getattr(out, "logits", out).astype(mx.float32)).astype(np.float64)
        diff = float(np.max(np.abs(logits - np.load(live))))
    outcomes.append({"unbound_keys": unbound, "max_abs_diff": diff})
print(json.dumps(outcomes))
"""


def write_base(base_dir: Path) -> Path:
    """The tiny LLaVA as a model folder another release can build: config.json and model.safetensors."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    if not (base_dir / "model.safetensors").is_file():
        vlm_writers.write_base_config(base_dir)
        weights = dict(tree_flatten(vlm_writers.make_base().parameters()))
        mx.save_safetensors(str(base_dir / "model.safetensors"), weights)
    return base_dir


def old_mlx_vlm_load(
    requirement: str, base_dir: Path, adapters: list[tuple[Path, Any]]
) -> list[vlm_writers.Outcome]:
    """``apply_lora_layers`` of the pinned release on each ``(adapter_dir, live logits or None)``."""
    import numpy as np

    python = runtime_venvs.runtime_python((requirement,))
    assert runtime_venvs.installed_version(python, "mlx-vlm") == requirement.split("==")[1]
    jobs = []
    for adapter_dir, live in adapters:
        live_path = None
        if live is not None:
            live_path = str(adapter_dir.parent / f"{adapter_dir.name}.live.npy")
            np.save(live_path, live)
        jobs.append([str(adapter_dir), live_path])
    answers = runtime_venvs.run_json(
        python, LOAD_SCRIPT, str(write_base(base_dir)), json.dumps(jobs), json.dumps(vlm_writers.PROBE_TOKENS)
    )
    return [
        vlm_writers.Outcome(
            error_type=a.get("error_type"), error=a.get("error"),
            unbound_keys=tuple(a.get("unbound_keys", ())), max_abs_diff=a.get("max_abs_diff"),
        )
        for a in answers
    ]


# -- mlx-vlm 0.6.0 - 0.6.13's mlx-lm fallback for text-only architectures ------------------

#: The releases either side of commit 738e4406 ("models: remove the MLX-LM fallback").
MLX_VLM_0_6_13 = "mlx-vlm==0.6.13"
MLX_VLM_0_6_14 = "mlx-vlm==0.6.14"

#: A tiny GPT-J: mlx-lm implements it; mlx-vlm 0.6.13 does not, so it builds it through mlx-lm.
GPTJ_CONFIG = {
    "model_type": "gptj", "n_embd": 32, "vocab_size": 64, "n_head": 4, "rotary_dim": 4, "n_layer": 2,
    "n_positions": 64, "layer_norm_epsilon": 1e-5,
}
GPTJ_TOKENS = [[0, 1, 2, 3, 5, 8, 13, 21]]

# Run by the old release: its own load_model (the whole model folder) and apply_lora_layers.
TEXT_MODEL_SCRIPT = """
import json, sys
from pathlib import Path
import numpy as np
import mlx.core as mx
from mlx_vlm.utils import load_model
from mlx_vlm.trainer.utils import apply_lora_layers
base_dir, adapter_dir, tokens, live = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
out = {"error_type": None, "error": None}
try:
    model = load_model(Path(base_dir))
    out["through_mlx_lm"] = bool(getattr(model, "_is_text_model", False))
    model = apply_lora_layers(model, adapter_dir)
except Exception as exc:
    out.update(error_type=type(exc).__name__, error=str(exc))
else:
    model.eval()
    logits = model.language_model(mx.array(tokens))
    logits = np.array(getattr(logits, "logits", logits).astype(mx.float32))
    out["max_abs_diff"] = float(np.max(np.abs(logits - np.load(live))))
print(json.dumps(out))
"""


def write_gptj_adapter(work: Path) -> tuple[Path, Path, Path]:
    """A GPT-J base folder and a stock mlx-lm LoRA of it (``mlx_lm.tuner``), "trained"; and its live logits.

    Returns (base_dir, adapter_dir, live .npy).
    """
    import builders
    import mlx.core as mx
    import numpy as np
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import _get_classes

    model_class, args_class = _get_classes(GPTJ_CONFIG)

    def base():
        mx.random.seed(0)
        model = model_class(args_class.from_dict(GPTJ_CONFIG))
        mx.eval(model.parameters())
        return model

    base_dir = work / "gptj"
    base_dir.mkdir(parents=True)
    mx.save_safetensors(str(base_dir / "model.safetensors"), dict(tree_flatten(base().parameters())))
    (base_dir / "config.json").write_text(json.dumps(GPTJ_CONFIG))

    model = base()
    model.freeze()
    lora_parameters = {"rank": 4, "scale": 2.0, "dropout": 0.0}
    linear_to_lora_layers(model, 2, lora_parameters)  # no keys: mlx-lm's default module set
    mx.random.seed(1)
    for _, module in sorted(model.named_modules(), key=lambda item: item[0]):
        if "lora_a" in module and "lora_b" in module:
            module.lora_a = mx.random.normal(module.lora_a.shape) * 0.3
            module.lora_b = mx.random.normal(module.lora_b.shape) * 0.5
    model.eval()
    live = work / "gptj_live.npy"
    np.save(live, np.array(model(mx.array(GPTJ_TOKENS)).astype(mx.float32)))
    adapter_dir = builders.save_mlx_lm_style(model, work / "gptj_adapter", num_layers=2, lora_parameters=lora_parameters)
    return base_dir, adapter_dir, live


def text_model_load(requirement: str, base_dir: Path, adapter_dir: Path, live: Path) -> dict[str, Any]:
    """The pinned release's ``load_model`` + ``apply_lora_layers`` on a text-only model folder."""
    python = runtime_venvs.runtime_python((requirement,))
    assert runtime_venvs.installed_version(python, "mlx-vlm") == requirement.split("==")[1]
    return runtime_venvs.run_json(
        python, TEXT_MODEL_SCRIPT, str(base_dir), str(adapter_dir), json.dumps(GPTJ_TOKENS), str(live)
    )
