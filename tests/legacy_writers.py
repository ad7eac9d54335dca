"""Adapters in the older formats: mlx-lm before 0.19 and before 0.6, mlx-vlm 0.5, mlx-examples ``adapters.npz``.

Where the old writer still installs and runs here, its real output is recorded in
``tests/data/legacy_writers/`` (regenerate with ``python tests/legacy_writers.py``; see
``regenerate``). The old packages are not test dependencies: they would pin mlx-lm and
mlx-vlm to old releases, so they run in throwaway venvs only when the recording is made.

- ``mlx_lm_0_18_lora`` / ``mlx_lm_0_18_dora``: **real writer**. The stock ``python -m mlx_lm.lora
  --train`` CLI of mlx-lm 0.18.2 (the last release with ``lora_layers`` and ``use_dora``, reference
  §3.2), run for 5 iterations on the tiny Llama of ``llama_config()`` with a
  WordLevel tokenizer. The config is the CLI's own args dump; ``--use-dora`` for the DoRA sample.
  ``live/<name>.npy`` holds the logits of ``mlx_lm.utils.load(base, adapter_path=...)`` of that same
  0.18.2, i.e. what the old loader made of the file, on ``builders.probe_tokens``.
- ``mlx_lm_0_5_npz``: **real writer**. The ``python -m mlx_lm.lora --train`` CLI of mlx-lm 0.5.0 (the
  ``adapters.npz`` era before 0.6, reference §3.2): ``adapters.npz`` and no config (it also makes an
  empty ``checkpoints/`` folder, which is not recorded). ``live`` is what 0.5.0's
  ``load(base, adapter_file=...)`` makes of it: it rebuilds the wrapped modules from the key names
  with its defaults, rank 8 and scale 10, which its LoRALinear multiplies by alpha 16 / rank 8 (so 20).
- Training in the old CLIs is not bit-reproducible from run to run; each recording is consistent with
  its own ``live`` file, which is what the tests compare against.
- ``mlx_vlm_0_5_legacy``: **real writer**. mlx-vlm 0.5.0's ``trainer.utils.get_peft_model`` and
  ``save_adapter`` (the old schema: exactly ``{rank, alpha, dropout}``, ``.A``/``.B`` leaves) on
  ``vlm_writers``' tiny LLaVA, whose weights are handed over from this environment so both sides
  share one base. ``live/<name>.npy`` holds the trained in-memory model's logits on
  ``vlm_writers.PROBE_TOKENS``.
- ``mlx_examples_lora_npz``: **recreated**, because mlx-examples ``lora/`` is a script directory, not
  a package. It follows the documented format (reference §3.1) and the script's source
  (ml-explore/mlx-examples ``lora/lora.py``: LoRA on ``self_attn.q_proj``/``v_proj`` of the last
  ``--lora-layers`` blocks, rank 8, scale 20, then ``mx.savez(adapter_file,
  **dict(tree_flatten(model.trainable_parameters())))``; no config file). It is built at test time
  with mlx-lm's LoRA layers, which hold the same ``lora_a`` (in, r) / ``lora_b`` (r, out) factors.

mlx / mlx_lm are imported inside the functions: importing this module is free.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import builders

RECORDED_DIR = Path(__file__).resolve().parent / "data" / "legacy_writers"
LIVE_DIR = RECORDED_DIR / "live"

OLD_MLX_LM = "mlx-lm==0.18.2"
NPZ_ERA_MLX_LM = "mlx-lm==0.5.0"
OLD_MLX_VLM = "mlx-vlm==0.5.0"

# mlx-examples lora/: fixed rank and scale (reference §3.1)
NPZ_RANK = 8
NPZ_SCALE = 20.0
NPZ_LORA_LAYERS = 2


def llama_config() -> dict[str, Any]:
    """The base every mlx-lm legacy sample was trained on (untied: mlx-lm 0.5.0's Llama needs an lm_head)."""
    return builders.tiny_llama_config(2, tie_word_embeddings=False)


@dataclass(frozen=True)
class LegacySample:
    name: str
    adapter_dir: Path
    writer: str  # who wrote it, and whether it is the real writer
    base: str  # "llama" (llama_config()) or "llava" (vlm_writers)
    live: Any = field(repr=False)  # numpy logits of the writer's own model, on the base's probe tokens


RECORDED: dict[str, tuple[str, str]] = {
    "mlx_lm_0_18_lora": ("llama", f"real: {OLD_MLX_LM} `python -m mlx_lm.lora --train`, recorded"),
    "mlx_lm_0_18_dora": ("llama", f"real: {OLD_MLX_LM} `python -m mlx_lm.lora --train --use-dora`, recorded"),
    "mlx_lm_0_5_npz": ("llama", f"real: {NPZ_ERA_MLX_LM} `python -m mlx_lm.lora --train`, recorded"),
    "mlx_vlm_0_5_legacy": ("llava", f"real: {OLD_MLX_VLM} get_peft_model + save_adapter, recorded"),
}
RECREATED = {"mlx_examples_lora_npz": ("llama", "recreated from mlx-examples lora/ source (no package)")}
CASES = [*RECORDED, *RECREATED]


def recorded_sample(name: str, dest_dir: str | Path) -> LegacySample:
    """A copy of the recorded real-writer output ``name`` in ``dest_dir``."""
    import numpy as np

    dest_dir = Path(dest_dir)
    shutil.copytree(RECORDED_DIR / name, dest_dir)
    base, writer = RECORDED[name]
    return LegacySample(name, dest_dir, writer, base, np.load(LIVE_DIR / f"{name}.npy"))


def mlx_examples_npz(dest_dir: str | Path) -> LegacySample:
    """``adapters.npz`` as mlx-examples ``lora/lora.py`` saves it: trainable parameters, no config."""
    import mlx.core as mx
    import numpy as np

    config = llama_config()
    model = builders.make_live_adapter(
        config, num_layers=NPZ_LORA_LAYERS, keys=builders.ATTENTION_KEYS, rank=NPZ_RANK, scale=NPZ_SCALE
    )
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    mx.savez(str(dest_dir / "adapters.npz"), **builders.adapter_tensors(model))
    live = np.array(builders.reference_logits(model, builders.probe_tokens(config)))
    return LegacySample("mlx_examples_lora_npz", dest_dir, RECREATED["mlx_examples_lora_npz"][1], "llama", live)


def build_sample(name: str, dest_dir: str | Path) -> LegacySample:
    return mlx_examples_npz(dest_dir) if name in RECREATED else recorded_sample(name, dest_dir)


CATALOGUE: dict[str, Callable[[Path], Path]] = {
    name: (lambda dest_dir, name=name: build_sample(name, dest_dir).adapter_dir) for name in CASES
}


def build_corpus(root: str | Path) -> dict[str, LegacySample]:
    root = Path(root)
    return {name: build_sample(name, root / name) for name in CASES}


# -- oracles ------------------------------------------------------------------------------


def mlx_lm_reload_logits(adapter_dir: str | Path):
    """Current stock mlx-lm ``load_adapters`` on a fresh base, logits on the probe tokens.

    Raises whatever ``load_adapters`` raises: the caller decides what the outcome means.
    """
    import numpy as np
    from mlx_lm.tuner.utils import load_adapters

    config = llama_config()
    model = load_adapters(builders.make_base(config), str(adapter_dir))
    return np.array(builders.reference_logits(model, builders.probe_tokens(config)))


def mlx_examples_reload_logits(adapter_dir: str | Path):
    """mlx-examples ``lora/lora.py``'s reload: wrap q/v of the last layers, then ``load_weights(strict=False)``."""
    import numpy as np
    from mlx_lm.tuner.utils import linear_to_lora_layers

    config = llama_config()
    model = builders.make_base(config)
    model.freeze()
    params = {"rank": NPZ_RANK, "scale": NPZ_SCALE, "dropout": 0.0, "keys": builders.ATTENTION_KEYS}
    linear_to_lora_layers(model, NPZ_LORA_LAYERS, params)
    model.load_weights(str(Path(adapter_dir) / "adapters.npz"), strict=False)
    return np.array(builders.reference_logits(model, builders.probe_tokens(config)))


# -- recording the real old writers -------------------------------------------------------

_TRAIN_ARGS = ["--train", "--data", "data", "--model", "base", "--iters", "5", "--batch-size", "2",
               "--lora-layers", "2", "--learning-rate", "0.05", "--seed", "0", "--steps-per-eval", "100",
               "--val-batches", "1"]  # fmt: skip

# name -> (mlx-lm release, extra CLI arguments, how its load() is pointed at the adapter)
_OLD_MLX_LM_RUNS = {
    "mlx_lm_0_18_lora": (OLD_MLX_LM, ["--adapter-path", "adapters"], {"adapter_path": "adapters"}),
    "mlx_lm_0_18_dora": (OLD_MLX_LM, ["--adapter-path", "adapters", "--use-dora"], {"adapter_path": "adapters"}),
    "mlx_lm_0_5_npz": (NPZ_ERA_MLX_LM, ["--adapter-file", "adapters/adapters.npz"], {"adapter_file": "adapters/adapters.npz"}),
}

# Run by the old mlx-lm: its own loader's logits for the adapter it just wrote.
_OLD_MLX_LM_LOGITS = """
import json, sys
import numpy as np
import mlx.core as mx
from mlx_lm.utils import load
model, _ = load("base", **json.loads(sys.argv[3]))
tokens = mx.array(json.loads(sys.argv[1]), dtype=mx.int32)
logits = model(tokens)
logits = logits[0] if isinstance(logits, tuple) else logits  # 0.5.0 returns (logits, cache)
np.save(sys.argv[2], np.array(logits.astype(mx.float32)))
"""

# Run by mlx-vlm 0.5.0: build the tiny LLaVA from config.json, take the handed-over weights,
# wrap with the 0.5.0 get_peft_model, "train", save with the 0.5.0 save_adapter.
_OLD_MLX_VLM_WRITE = """
import json, sys
import numpy as np
import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten
from mlx_vlm.utils import get_model_and_args, update_module_configs
from mlx_vlm.trainer.utils import get_peft_model, save_adapter
base_dir, out_dir, tokens, base_logits_path, live_path = sys.argv[1:6]
mx.random.seed(0)  # get_peft_model draws A at random
config = json.load(open(f"{base_dir}/config.json"))
arch, _ = get_model_and_args(config=config)
modules = ["text", "vision", "perceiver", "projector", "audio"]
model_config = update_module_configs(arch.ModelConfig.from_dict(config), arch, config, modules)
model = arch.Model(model_config)
model.load_weights(f"{base_dir}/model.safetensors", strict=True)
model.eval()
tokens = mx.array(json.loads(tokens))
def logits():
    out = model.language_model(tokens)
    return np.array(getattr(out, "logits", out).astype(mx.float32))
np.save(base_logits_path, logits())
get_peft_model(model, ["q_proj", "v_proj"], rank=4, alpha=8.0, dropout=0.0, verbose=False)
mx.random.seed(1)
params = sorted(tree_flatten(model.trainable_parameters()), key=lambda kv: kv[0])
model.update(tree_unflatten([(k, v + 0.2 * mx.random.normal(v.shape)) for k, v in params]))
model.eval()
np.save(live_path, logits())
save_adapter(model, f"{out_dir}/adapters.safetensors")
"""


def _make_venv(path: Path, requirement: str) -> Path:
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", requirement, "mlx[cpu]"], check=True)
    return python


def _write_llama_base(base_dir: Path, data_dir: Path) -> None:
    """The tiny Llama as a model folder mlx-lm 0.18.2 can load, plus a tiny text dataset."""
    import random

    import mlx.core as mx
    from mlx.utils import tree_flatten
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    config = llama_config()
    base_dir.mkdir(parents=True)
    model = builders.make_base(config)
    mx.save_safetensors(str(base_dir / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (base_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    words = {f"w{i}": i for i in range(config["vocab_size"])}
    tokenizer = Tokenizer(models.WordLevel(words, unk_token="w0"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="w0", eos_token="w1", pad_token="w2").save_pretrained(
        base_dir
    )
    data_dir.mkdir(parents=True)
    rng = random.Random(0)
    for split, lines in (("train", 8), ("valid", 4)):
        text = [json.dumps({"text": " ".join(f"w{rng.randrange(3, 64)}" for _ in range(12))}) for _ in range(lines)]
        (data_dir / f"{split}.jsonl").write_text("\n".join(text) + "\n", encoding="utf-8")


def _record(src: Path, name: str) -> None:
    dest = RECORDED_DIR / name
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest)
    for empty in [d for d in dest.iterdir() if d.is_dir() and not any(d.iterdir())]:
        empty.rmdir()  # mlx-lm 0.5.0 makes an empty checkpoints/; git would not keep it anyway


def regenerate(venv_root: str | Path | None = None) -> None:
    """Re-record every real-writer sample with the old packages in throwaway venvs.

    ``venv_root`` keeps the venvs between runs (default: a temporary directory).
    """
    import mlx.core as mx
    import numpy as np
    import vlm_writers
    from mlx.utils import tree_flatten

    venv_root = Path(venv_root or tempfile.mkdtemp(prefix="legacy-venvs-"))
    old_vlm = _make_venv(venv_root / "mlx-vlm-0.5.0", OLD_MLX_VLM)
    LIVE_DIR.mkdir(parents=True, exist_ok=True)
    tokens = json.dumps(np.array(builders.probe_tokens(llama_config())).tolist())

    for name, (release, extra, loader_args) in _OLD_MLX_LM_RUNS.items():
        old_lm = _make_venv(venv_root / release.replace("==", "-"), release)
        with tempfile.TemporaryDirectory() as work:
            work = Path(work)
            _write_llama_base(work / "base", work / "data")
            (work / "adapters").mkdir()
            subprocess.run([str(old_lm), "-m", "mlx_lm.lora", *_TRAIN_ARGS, *extra], cwd=work, check=True)
            live = str(LIVE_DIR / f"{name}.npy")
            logits = [str(old_lm), "-c", _OLD_MLX_LM_LOGITS, tokens, live, json.dumps(loader_args)]
            subprocess.run(logits, cwd=work, check=True)
            _record(work / "adapters", name)

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        base_dir, out_dir = work / "base", work / "adapters"
        vlm_writers.write_base_config(base_dir)
        base = vlm_writers.make_base()
        mx.save_safetensors(str(base_dir / "model.safetensors"), dict(tree_flatten(base.parameters())))
        live = LIVE_DIR / "mlx_vlm_0_5_legacy.npy"
        args = [str(base_dir), str(out_dir), json.dumps([vlm_writers.PROBE_TOKENS]), str(work / "base.npy"), str(live)]
        subprocess.run([str(old_vlm), "-c", _OLD_MLX_VLM_WRITE, *args], check=True)
        # Both sides must have run the same base, or the recorded logits prove nothing.
        assert np.allclose(np.load(work / "base.npy"), vlm_writers.probe_output(base), atol=1e-5)
        _record(out_dir, "mlx_vlm_0_5_legacy")


if __name__ == "__main__":
    regenerate(sys.argv[1] if len(sys.argv) > 1 else None)
