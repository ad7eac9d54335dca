"""Adapters written by the real trainer: ``python -m mlx_lm lora --train``, offline.

A tiny llama and a tiny gpt-oss are built in code, given seeded weights, and
saved with mlx-lm's own ``save_model`` / ``save_config`` next to a ``tokenizers``
WordLevel tokenizer saved through ``PreTrainedTokenizerFast``. The stock trainer
then fine-tunes them for two iterations on a few lines of jsonl, once per
variant in :data:`VARIANTS`. What it writes is the oracle for "a real mlx-lm
save": nothing here builds an adapter by hand.

``build_corpus(root)`` runs every variant, each in its own directory, and
returns :class:`TrainedAdapter` records: the adapter directory, the base it
trained on (``fresh_base()`` reloads it with stock ``mlx_lm.load``) and the
trained logits (``trained_logits()``: stock ``mlx_lm.load(base,
adapter_path=...)`` on the untouched adapter). Tests that damage or fix an
adapter work on ``copy_to(...)``. The whole corpus builds in 20-30 s here:
one process imports mlx-lm once and forks a child per run (see :func:`build`).
The pytest fixture ``trainer_corpus`` (``tests/mlx_trainer_fixtures.py``)
builds it once per session, shared between xdist workers through a file lock.

Importing this module costs nothing: mlx, mlx_lm and transformers are imported
inside the functions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builders import tiny_gpt_oss_config, tiny_llama_config

#: Iterations per run: enough that every ``lora_b`` moves off zero.
ITERS = 2
#: Learning rate high enough that two steps change the logits visibly.
LEARNING_RATE = 1e-2
#: Trainer processes run side by side.
PARALLEL = 3
#: Words in the tokenizer besides its special tokens; every base has this vocabulary.
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
VOCAB_SIZE = 64
#: Seconds one trainer process may take before the build fails loudly.
TIMEOUT = 300


@dataclass(frozen=True)
class Variant:
    """One way of calling the stock trainer."""

    name: str
    base: str  # "llama", "gpt_oss" or "llama-4bit" (the llama after ``mlx_lm convert -q``)
    #: Extra command-line arguments for ``mlx_lm lora``.
    args: tuple[str, ...] = ()
    #: A yaml ``--config`` file's contents (a dict, written as yaml), or None.
    yaml: dict[str, Any] | None = None
    #: Another variant whose ``adapters.safetensors`` this run resumes from (``--resume-adapter-file``).
    resume: str | None = None


VARIANTS: tuple[Variant, ...] = (
    Variant("lora-2-layers", "llama", ("--num-layers", "2")),
    Variant("dora", "llama", ("--fine-tune-type", "dora", "--num-layers", "2")),
    Variant("all-layers", "llama", ("--num-layers", "-1")),
    Variant(
        "yaml-keys",
        "llama",
        yaml={
            "num_layers": 3,
            "lora_parameters": {
                "keys": ["self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"],
                "rank": 4,
                "scale": 8.0,
                "dropout": 0.05,
            },
        },
    ),
    Variant(
        "embedding",
        "llama",
        yaml={
            "num_layers": 2,
            "lora_parameters": {
                "keys": ["self_attn.q_proj", "model.embed_tokens"],
                "rank": 4,
                "scale": 4.0,
                "dropout": 0.0,
            },
        },
    ),
    Variant("full", "llama", ("--fine-tune-type", "full", "--num-layers", "2")),
    Variant("qlora", "llama-4bit", ("--num-layers", "2")),
    Variant(
        "gpt-oss-experts",
        "gpt_oss",
        yaml={
            "num_layers": -1,
            "lora_parameters": {
                "keys": ["mlp.experts.gate_proj", "mlp.experts.up_proj", "mlp.experts.down_proj"],
                "rank": 4,
                "scale": 8.0,
                "dropout": 0.0,
            },
        },
    ),
    Variant("gpt-oss-attention", "gpt_oss", ("--num-layers", "2")),
    Variant("resume", "llama", ("--num-layers", "2"), resume="lora-2-layers"),
)


@dataclass(frozen=True)
class TrainedAdapter:
    """What one trainer run wrote, and the base it trained on."""

    name: str
    #: The adapter directory as the trainer left it. Tests copy it before changing anything.
    adapter_dir: Path
    #: The base the trainer loaded (for QLoRA: the 4-bit copy), saved with mlx-lm's utilities.
    base_dir: Path
    family: str  # "llama" or "gpt_oss"
    variant: Variant = field(compare=False)

    @property
    def config(self) -> dict[str, Any]:
        return json.loads((self.adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))

    @property
    def base_config(self) -> dict[str, Any]:
        return json.loads((self.base_dir / "config.json").read_text(encoding="utf-8"))

    def copy_to(self, directory: str | Path) -> Path:
        """A copy of the adapter directory to damage or fix; the original stays as written."""
        import shutil

        return Path(shutil.copytree(self.adapter_dir, directory))

    def fresh_base(self):
        """A fresh base model, loaded by stock ``mlx_lm.load`` from the saved base."""
        from mlx_lm import load

        return load(str(self.base_dir))[0]

    def load(self, adapter_dir: str | Path | None = None):
        """Stock ``mlx_lm.load(base, adapter_path=...)``: this adapter, or a (fixed) copy of it."""
        from mlx_lm import load

        return load(str(self.base_dir), adapter_path=str(adapter_dir or self.adapter_dir))[0]

    def probe_tokens(self):
        """A fixed batch of token ids that crosses the gpt-oss sliding window."""
        import mlx.core as mx
        import numpy as np

        ids = np.random.default_rng(7).integers(len(SPECIAL_TOKENS), VOCAB_SIZE, size=(2, 24))
        return mx.array(ids.astype(np.int32))

    def logits(self, adapter_dir: str | Path | None = None):
        """Eval-mode logits on :meth:`probe_tokens` after a stock reload of ``adapter_dir``."""
        import mlx.core as mx

        model = self.load(adapter_dir)
        model.eval()
        out = model(self.probe_tokens())
        mx.eval(out)
        return out

    def trained_logits(self):
        """The trained model's logits: a stock reload of the adapter exactly as the trainer wrote it."""
        return self.logits(self.adapter_dir)

    def fuse(self, save_path: str | Path, adapter_dir: str | Path | None = None) -> Path:
        """``python -m mlx_lm fuse`` of ``adapter_dir`` (default: as written) into this base.

        Runs in this process through runpy: the same ``__main__`` as the
        command line. A 4-bit base is fused ``--dequantize``: re-quantizing
        the sum would move the logits.
        """
        import runpy

        argv = ["mlx_lm", "fuse", "--model", str(self.base_dir), "--adapter-path", str(adapter_dir or self.adapter_dir)]
        argv += ["--save-path", str(save_path)]
        if "quantization" in self.base_config:
            argv.append("--dequantize")
        saved, sys.argv = sys.argv, argv
        try:
            runpy.run_module("mlx_lm", run_name="__main__", alter_sys=True)
        finally:
            sys.argv = saved
        return Path(save_path)

    def fused_logits(self, fused_dir: str | Path):
        """Eval-mode logits on :meth:`probe_tokens` of a fused model, loaded by stock ``mlx_lm.load``."""
        import mlx.core as mx
        from mlx_lm import load

        model = load(str(fused_dir))[0]
        model.eval()
        out = model(self.probe_tokens())
        mx.eval(out)
        return out


# -- bases --------------------------------------------------------------------------


def base_configs() -> dict[str, dict[str, Any]]:
    """The two base architectures, with the tokenizer's vocabulary size."""
    llama = tiny_llama_config(4, vocab_size=VOCAB_SIZE)
    # The window is shorter than the probe and the training rows, so sliding layers really slide.
    gpt_oss = tiny_gpt_oss_config(4, sliding_window=8, vocab_size=VOCAB_SIZE)
    return {"llama": llama, "gpt_oss": gpt_oss}


def words() -> list[str]:
    return [f"w{i}" for i in range(VOCAB_SIZE - len(SPECIAL_TOKENS))]


def save_tokenizer(directory: Path) -> None:
    """A WordLevel tokenizer over :func:`words`, saved the way ``transformers`` saves one."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + words())}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    wrapped.save_pretrained(str(directory))


def save_base(config: dict[str, Any], directory: Path, seed: int = 0) -> Path:
    """Build the architecture in code with seeded weights; save it with mlx-lm's utilities."""
    import importlib

    import mlx.core as mx
    from mlx_lm.utils import save_config, save_model

    arch = importlib.import_module(f"mlx_lm.models.{config['model_type']}")
    mx.random.seed(seed)
    model = arch.Model(arch.ModelArgs.from_dict(config))
    mx.eval(model.parameters())
    save_model(directory, model)
    save_config(dict(config), directory / "config.json")
    save_tokenizer(directory)
    return directory


def write_data(directory: Path, rows: int = 8, seed: int = 0) -> Path:
    """``train.jsonl`` / ``valid.jsonl`` of random word sentences, longer than the sliding window."""
    import random

    rng = random.Random(seed)
    vocab = words()
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid"):
        lines = [json.dumps({"text": " ".join(rng.choice(vocab) for _ in range(20))}) for _ in range(rows)]
        (directory / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


# -- the trainer ------------------------------------------------------------------------


def _offline_env() -> None:
    # Offline: a tiny local model needs nothing from the network, and must not try.
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def run_mlx_lm(*args: str, cwd: Path) -> None:
    """``python -m mlx_lm ARGS`` in a fresh interpreter; a failure raises with its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "mlx_lm", *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT
    )
    if proc.returncode != 0:
        output = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        raise RuntimeError(f"python -m mlx_lm {' '.join(args)} exited {proc.returncode}\n{output}")


def trainer_args(variant: Variant, base_dir: Path, data_dir: Path, work: Path) -> list[str]:
    """The ``mlx_lm lora`` command line for one variant (writes its yaml config, if any)."""
    import yaml

    args = [
        "lora",
        "--train",
        "--model", str(base_dir),
        "--data", str(data_dir),
        "--adapter-path", str(work / "adapters"),
        "--iters", str(ITERS),
        "--batch-size", "2",
        "--val-batches", "1",
        "--steps-per-eval", "1000",
        "--steps-per-report", "1000",
        "--save-every", "1000",
        "--learning-rate", str(LEARNING_RATE),
        "--max-seq-length", "64",
        "--seed", "0",
        *variant.args,
    ]  # fmt: skip
    if variant.resume is not None:
        args += ["--resume-adapter-file", str(work.parent / variant.resume / "adapters" / "adapters.safetensors")]
    if variant.yaml is not None:
        config_file = work / "train.yaml"
        config_file.write_text(yaml.safe_dump(variant.yaml), encoding="utf-8")
        args += ["--config", str(config_file)]
    return args


def _forked(log: Path, cwd: Path, job) -> int:
    """Run ``job()`` in a fork with stdout/stderr in ``log``; returns the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(cwd)
        job()
        code = 0
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported through the log and the exit status
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run_module(argv: list[str]):
    """``python -m mlx_lm ARGV``, exactly: the same ``__main__`` through runpy."""

    def job():
        import runpy

        sys.argv = ["mlx_lm", *argv]
        runpy.run_module("mlx_lm", run_name="__main__", alter_sys=True)

    return job


def _wait_all(jobs: list[tuple[str, Path, Path, object]], parallel: int) -> None:
    """Run ``(name, log, cwd, job)`` forks, ``parallel`` at a time; raise with the log of any failure."""
    pending, running, failed = list(jobs), {}, []
    while pending or running:
        while pending and len(running) < parallel:
            name, log, cwd, job = pending.pop(0)
            running[_forked(log, cwd, job)] = (name, log)
        pid, status = os.wait()
        name, log = running.pop(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            tail = log.read_text(errors="replace")[-3000:]
            failed.append(f"{name}: exit {os.waitstatus_to_exitcode(status)}\n{tail}")
    if failed:
        raise RuntimeError("trainer runs failed:\n" + "\n".join(failed))


def build(root: Path, variants: tuple[Variant, ...] = VARIANTS) -> dict[str, Any]:
    """Save the bases, then run the stock trainer once per variant under ``root``; returns the manifest.

    Runs in its own process (``python tests/mlx_trainer.py ROOT``). It imports
    mlx-lm once and forks one child per step, each running ``python -m mlx_lm``
    through runpy; the parent never computes with MLX, so every child starts
    clean. Only ``mlx_lm convert`` runs as a fresh interpreter.
    """
    _offline_env()
    import mlx.core  # noqa: F401 - imported once, before the forks
    import mlx_lm.lora  # noqa: F401
    import mlx_lm.utils  # noqa: F401
    import transformers  # noqa: F401

    root.mkdir(parents=True, exist_ok=True)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    bases = {family: root / "bases" / family for family in base_configs()}

    def save_bases():
        for family, config in base_configs().items():
            save_base(config, bases[family])
        write_data(root / "data")

    _wait_all([("bases", logs / "bases.log", root, save_bases)], 1)
    if any(v.base == "llama-4bit" for v in variants):
        bases["llama-4bit"] = root / "bases" / "llama-4bit"
        run_mlx_lm(
            "convert", "--hf-path", str(bases["llama"]), "--mlx-path", str(bases["llama-4bit"]),
            "-q", "--q-bits", "4", "--q-group-size", "32",
            cwd=root,
        )  # fmt: skip

    manifest, waves = {}, ([], [])  # runs that resume from another run go second
    for variant in variants:
        work = root / "runs" / variant.name
        work.mkdir(parents=True, exist_ok=True)
        argv = trainer_args(variant, bases[variant.base], root / "data", work)
        waves[variant.resume is not None].append((variant.name, logs / f"{variant.name}.log", work, _run_module(argv)))
        manifest[variant.name] = {"adapter_dir": str(work / "adapters"), "base_dir": str(bases[variant.base])}
    for jobs in waves:
        _wait_all(jobs, PARALLEL)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def build_corpus(root: str | Path, variants: tuple[Variant, ...] = VARIANTS) -> dict[str, TrainedAdapter]:
    """Build the corpus under ``root`` in a child process; one :class:`TrainedAdapter` per variant."""
    root = Path(root)
    names = [v.name for v in variants]
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), str(root), *names],
        capture_output=True, text=True, timeout=TIMEOUT * 2,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"building the trainer corpus failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return load_corpus(root, variants)


def load_corpus(root: str | Path, variants: tuple[Variant, ...] = VARIANTS) -> dict[str, TrainedAdapter]:
    """The records of a corpus built under ``root``."""
    manifest = json.loads((Path(root) / "manifest.json").read_text(encoding="utf-8"))
    return {
        v.name: TrainedAdapter(
            v.name,
            Path(manifest[v.name]["adapter_dir"]),
            Path(manifest[v.name]["base_dir"]),
            "gpt_oss" if v.base == "gpt_oss" else "llama",
            v,
        )
        for v in variants
    }


if __name__ == "__main__":  # python tests/mlx_trainer.py ROOT [VARIANT ...]
    selected = set(sys.argv[2:])
    build(Path(sys.argv[1]), tuple(v for v in VARIANTS if not selected or v.name in selected))
