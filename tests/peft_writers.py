"""Real PEFT adapters, written by ``peft`` ``save_pretrained``, and PEFT's own loader as the oracle.

Every sample is a tiny random model built in code (no download), wrapped with
``get_peft_model``, "trained" by giving every trainable tensor seeded non-zero
values (PEFT's init leaves ``lora_B`` at zero, which would make any reload look
right), and saved with the stock ``save_pretrained``. The live model's logits on
a fixed input are kept so a reload on a fresh base can be compared with them.

Bases (``BASES``):
- ``llama``: transformers ``LlamaForCausalLM``, hidden 64, 2 layers, vocab 128, mlp 128;
- ``gpt2``: transformers ``GPT2LMHeadModel`` (Conv1D layers), n_embd 64, 2 layers, vocab 128;
- ``conv_emb``: a plain torch module with Conv2d, Conv1d, Linear and Embedding.

``CATALOGUE`` maps each sample name (reference §1.8) to ``builder(dest_dir) -> adapter_dir``.
``peft_load`` loads an adapter folder with ``PeftModel.from_pretrained`` on a fresh base and
returns what PEFT did as a plain :class:`Outcome`. ``CORRUPTIONS`` lists edits of real
samples, as data; ``tests/test_peft_oracle.py`` states what PEFT does with each.

torch / transformers / peft are imported inside the functions: importing this module is free.
"""

from __future__ import annotations

import ast
import functools
import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WEIGHTS_NAME = "adapter_model.safetensors"
BIN_WEIGHTS_NAME = "adapter_model.bin"
CONFIG_NAME = "adapter_config.json"
MISSING_KEYS_WARNING = "Found missing adapter keys while loading the checkpoint: "

BASE_SEED = 0
TRAIN_SEED = 1

# Token ids used as the fixed probe; they include the trainable-token indices 1, 2, 3.
PROBE_TOKENS = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 120]

LLAMA = "llama"
GPT2 = "gpt2"
CONV_EMB = "conv_emb"


# -- bases ------------------------------------------------------------------------


def llama_config():
    """The tiny ``LlamaConfig`` every Llama sample is trained on (reference §1.8)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=128,
        max_position_embeddings=64,
    )


def gpt2_config():
    """A tiny GPT-2: its attention and MLP are ``Conv1D`` layers stored (in, out)."""
    from transformers import GPT2Config

    # GPT-2 defaults its special tokens to id 50256, outside this vocabulary.
    return GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=128, n_positions=64, bos_token_id=0, eos_token_id=0)


@functools.cache
def _conv_emb_class():
    import torch
    from torch import nn

    class ConvEmbNet(nn.Module):
        """Not a transformers model: PEFT writes ``task_type: null`` and ``auto_mapping``."""

        def __init__(self):
            super().__init__()
            self.conv2d = nn.Conv2d(3, 16, 3)
            self.conv1d = nn.Conv1d(4, 6, 5)
            self.linear = nn.Linear(10, 20)
            self.embedding = nn.Embedding(30, 12)

        def forward(self, image, signal, features, ids):
            outputs = (self.conv2d(image), self.conv1d(signal), self.linear(features), self.embedding(ids))
            return torch.cat([out.flatten() for out in outputs])

    return ConvEmbNet


def make_base(kind: str):
    """A fresh base model of ``kind``, with the same seeded weights every time."""
    import torch

    torch.manual_seed(BASE_SEED)
    if kind == LLAMA:
        from transformers import LlamaForCausalLM

        model = LlamaForCausalLM(llama_config())
    elif kind == GPT2:
        from transformers import GPT2LMHeadModel

        model = GPT2LMHeadModel(gpt2_config())
    elif kind == CONV_EMB:
        model = _conv_emb_class()()
    else:
        raise ValueError(f"unknown base kind {kind!r}")
    return model.eval()


BASES: dict[str, Callable[[], Any]] = {kind: functools.partial(make_base, kind) for kind in (LLAMA, GPT2, CONV_EMB)}


def write_base_config(kind: str, dest_dir: str | Path) -> Path:
    """The base model's ``config.json`` in ``dest_dir`` (transformers bases only: ``conv_emb`` has none)."""
    config = {LLAMA: llama_config, GPT2: gpt2_config}[kind]()
    dest_dir = Path(dest_dir)
    config.save_pretrained(dest_dir)
    return dest_dir / "config.json"


def probe_output(model, kind: str):
    """The model's output on the fixed probe input, as a float64 numpy array."""
    import torch

    with torch.no_grad():
        if kind == CONV_EMB:
            generator = torch.Generator().manual_seed(2)
            out = model(
                image=torch.randn(1, 3, 6, 6, generator=generator),
                signal=torch.randn(1, 4, 9, generator=generator),
                features=torch.randn(2, 10, generator=generator),
                ids=torch.tensor([[0, 3, 7, 29]]),
            )
        else:
            out = model(input_ids=torch.tensor([PROBE_TOKENS])).logits
    return out.detach().double().numpy()


# -- the samples --------------------------------------------------------------------


@dataclass(frozen=True)
class PeftCase:
    """How one sample is made: the base, the ``LoraConfig`` fields, how it is saved."""

    base: str
    config: dict[str, Any]
    adapter_name: str = "default"
    safe_serialization: bool = True


QV = ["q_proj", "v_proj"]

CASES: dict[str, PeftCase] = {
    "plain_qv": PeftCase(LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": QV}),
    "rank_alpha_pattern": PeftCase(
        LLAMA,
        {
            "r": 8,
            "lora_alpha": 16,
            "target_modules": ["q_proj", "k_proj", "v_proj"],
            "rank_pattern": {"q_proj": 4, "^model.layers.1.self_attn.v_proj": 2},
            "alpha_pattern": {"k_proj": 32},
        },
    ),
    "dora": PeftCase(LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": QV, "use_dora": True}),
    "rslora": PeftCase(LLAMA, {"r": 16, "lora_alpha": 16, "target_modules": QV, "use_rslora": True}),
    "embedding": PeftCase(LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": ["embed_tokens", "q_proj"]}),
    "modules_to_save_lm_head": PeftCase(
        LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": QV, "modules_to_save": ["lm_head"]}
    ),
    "regex_target": PeftCase(
        LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": r".*\.layers\.1\.self_attn\.(q|v)_proj"}
    ),
    "layers_to_transform": PeftCase(
        LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": QV, "layers_to_transform": [0]}
    ),
    "layers_pattern": PeftCase(
        LLAMA,
        {"r": 8, "lora_alpha": 16, "target_modules": QV, "layers_to_transform": 1, "layers_pattern": "layers"},
    ),
    "all_linear": PeftCase(LLAMA, {"r": 2, "lora_alpha": 4, "target_modules": "all-linear"}),
    "trainable_tokens": PeftCase(
        LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": QV, "trainable_token_indices": [1, 2, 3]}
    ),
    "bin_fallback": PeftCase(LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": QV}, safe_serialization=False),
    # A non-default adapter name: save_pretrained writes it into <dir>/<name>/.
    "named_subfolder": PeftCase(LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": QV}, adapter_name="other"),
    "gpt2_conv1d_fan_in_fan_out": PeftCase(
        GPT2, {"r": 4, "lora_alpha": 8, "target_modules": ["c_attn"], "fan_in_fan_out": True}
    ),
    "gpt2_bias_lora_only": PeftCase(
        GPT2, {"r": 4, "lora_alpha": 8, "target_modules": ["c_attn"], "fan_in_fan_out": True, "bias": "lora_only"}
    ),
    "gpt2_bias_all": PeftCase(
        GPT2, {"r": 4, "lora_alpha": 8, "target_modules": ["c_attn"], "fan_in_fan_out": True, "bias": "all"}
    ),
    "gpt2_lora_bias": PeftCase(
        GPT2, {"r": 4, "lora_alpha": 8, "target_modules": ["c_attn"], "fan_in_fan_out": True, "lora_bias": True}
    ),
    "custom_conv_emb_dora": PeftCase(
        CONV_EMB,
        {"r": 4, "lora_alpha": 8, "target_modules": ["conv2d", "conv1d", "linear", "embedding"], "use_dora": True},
    ),
}


# Written by the real save_pretrained, but PEFT itself cannot load them back. Kept out of
# ``CASES`` (the clean corpus). save_pretrained writes the config with sorted keys, so a
# rank_pattern whose meaning depends on key order (first match wins) changes on the round trip.
ROUND_TRIP_FAILURES: dict[str, PeftCase] = {
    "rank_pattern_order_sensitive": PeftCase(
        LLAMA,
        {
            "r": 8,
            "lora_alpha": 16,
            "target_modules": ["q_proj"],
            "rank_pattern": {"q_proj": 4, "layers.0.self_attn.q_proj": 2},
        },
    ),
}


@dataclass(frozen=True)
class PeftSample:
    """One written adapter: where it is, what base it needs, and the live model's output."""

    name: str
    adapter_dir: Path
    base: str
    live: Any = field(repr=False)  # numpy array: probe_output of the trained in-memory model
    save_warnings: tuple[str, ...] = ()  # what save_pretrained warned, verbatim

    def base_factory(self):
        return BASES[self.base]()


def _train(model) -> None:
    """Give every trainable tensor seeded non-zero values, as training would."""
    import torch

    generator = torch.Generator().manual_seed(TRAIN_SEED)
    with torch.no_grad():
        for _, param in sorted(model.named_parameters(), key=lambda item: item[0]):
            if param.requires_grad:
                noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
                param.add_(0.2 * noise)


def build_sample(name: str, dest_dir: str | Path) -> PeftSample:
    """Write sample ``name`` with ``save_pretrained(dest_dir)``; return where the adapter landed."""
    from peft import LoraConfig, get_peft_model

    case = CASES[name] if name in CASES else ROUND_TRIP_FAILURES[name]
    task_type = None if case.base == CONV_EMB else "CAUSAL_LM"
    base = make_base(case.base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(base, LoraConfig(task_type=task_type, **case.config), adapter_name=case.adapter_name)
    _train(model)
    model.eval()
    live = probe_output(model, case.base)
    dest_dir = Path(dest_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.save_pretrained(dest_dir, safe_serialization=case.safe_serialization)
    saved = tuple(str(w.message) for w in caught if not issubclass(w.category, (DeprecationWarning, FutureWarning)))
    adapter_dir = dest_dir if case.adapter_name == "default" else dest_dir / case.adapter_name
    return PeftSample(name, adapter_dir, case.base, live, saved)


CATALOGUE: dict[str, Callable[[Path], Path]] = {
    name: (lambda dest_dir, name=name: build_sample(name, dest_dir).adapter_dir) for name in CASES
}


def build_corpus(root: str | Path) -> dict[str, PeftSample]:
    """Every sample in ``CASES``, each in ``root/<name>``."""
    root = Path(root)
    return {name: build_sample(name, root / name) for name in CASES}


# -- the oracle: PeftModel.from_pretrained on a fresh base ---------------------------


@dataclass(frozen=True)
class Outcome:
    """What a real loader did with an adapter folder, as plain data."""

    error_type: str | None = None
    error: str | None = None
    missing_keys: tuple[str, ...] = ()  # from the loader's "missing keys" report
    unexpected_keys: tuple[str, ...] = ()  # tensors in the file the loader ignored
    warnings: tuple[str, ...] = ()  # every other warning, verbatim
    max_abs_diff: float | None = None  # against the live output, when one was given

    @property
    def loaded(self) -> bool:
        return self.error_type is None

    def reproduces_live(self, atol: float = 1e-4) -> bool:
        return self.loaded and self.max_abs_diff is not None and self.max_abs_diff < atol

    @property
    def silent(self) -> bool:
        """Loaded with nothing said: no error, no missing keys, no warning."""
        return self.loaded and not self.missing_keys and not self.warnings


def _missing_keys_from(message: str) -> tuple[str, ...]:
    listed = message[message.index(MISSING_KEYS_WARNING) + len(MISSING_KEYS_WARNING) :].rstrip(".")
    return tuple(ast.literal_eval(listed))


def peft_load(adapter_dir: str | Path, base_factory: Callable[[], Any], live=None, **kwargs) -> Outcome:
    """Load ``adapter_dir`` with ``PeftModel.from_pretrained`` on ``base_factory()`` and report.

    ``unexpected_keys`` comes from the load result ``from_pretrained`` computes and then
    drops: the wrapper below only records what ``load_adapter`` returns.
    """
    from unittest import mock

    import numpy as np
    from peft import PeftModel

    results = []
    original = PeftModel.load_adapter

    def recording_load_adapter(self, *args, **kw):
        result = original(self, *args, **kw)
        results.append(result)
        return result

    base = base_factory()
    kind = CONV_EMB if type(base) is _conv_emb_class() else LLAMA  # LLAMA's probe serves every causal LM
    recording = mock.patch.object(PeftModel, "load_adapter", recording_load_adapter)
    with warnings.catch_warnings(record=True) as caught, recording:
        warnings.simplefilter("always")
        try:
            model = PeftModel.from_pretrained(base, str(adapter_dir), **kwargs)
        except Exception as exc:  # the outcome under test; any type is data here
            model, error = None, exc
        else:
            error = None
    # Deprecation notices are about the library's own API, not about the adapter.
    messages = [str(w.message) for w in caught if not issubclass(w.category, (DeprecationWarning, FutureWarning))]
    missing = next((_missing_keys_from(m) for m in messages if MISSING_KEYS_WARNING in m), ())
    others = tuple(m for m in messages if MISSING_KEYS_WARNING not in m)
    unexpected = tuple(results[0].unexpected_keys) if results and error is None else ()
    diff = None
    if model is not None and live is not None:
        model.eval()
        diff = float(np.max(np.abs(probe_output(model, kind) - live)))
    return Outcome(
        error_type=None if error is None else type(error).__name__,
        error=None if error is None else str(error),
        missing_keys=missing,
        unexpected_keys=unexpected,
        warnings=others,
        max_abs_diff=diff,
    )


def load_sample(sample: PeftSample, adapter_dir: str | Path | None = None, **kwargs) -> Outcome:
    """``peft_load`` of ``sample`` (or of an edited copy at ``adapter_dir``) against its live output."""
    return peft_load(adapter_dir or sample.adapter_dir, sample.base_factory, live=sample.live, **kwargs)


# -- corruptions, as data --------------------------------------------------------------


def read_config(adapter_dir: Path) -> dict[str, Any]:
    return json.loads((adapter_dir / CONFIG_NAME).read_text(encoding="utf-8"))


def write_config(adapter_dir: Path, config: dict[str, Any]) -> None:
    (adapter_dir / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")


def edit_config(**changes: Any) -> Callable[[Path], None]:
    """A corruption that sets config keys; the value ``DELETE`` removes a key."""

    def apply(adapter_dir: Path) -> None:
        config = read_config(adapter_dir)
        for key, value in changes.items():
            if value is DELETE:
                config.pop(key, None)
            else:
                config[key] = value
        write_config(adapter_dir, config)

    return apply


DELETE = object()


def read_tensors(adapter_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / WEIGHTS_NAME))


def write_tensors(adapter_dir: Path, tensors: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    contiguous = {k: v.contiguous() for k, v in tensors.items()}
    save_file(contiguous, str(adapter_dir / WEIGHTS_NAME), metadata={"format": "pt"})


def edit_tensors(edit: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Path], None]:
    """A corruption that rewrites the weights file through ``edit(tensors) -> tensors``."""

    def apply(adapter_dir: Path) -> None:
        write_tensors(adapter_dir, edit(read_tensors(adapter_dir)))

    return apply


L0 = "base_model.model.model.layers.0.self_attn"
L1 = "base_model.model.model.layers.1.self_attn"
LM_HEAD = "base_model.model.lm_head.weight"


def _transpose(key: str):
    return lambda t: {k: (v.T if k == key else v) for k, v in t.items()}


def _rename(old: str, new: str):
    return lambda t: {(new if k == old else k): v for k, v in t.items()}


def _with_extra(key: str, shape: tuple[int, ...]):
    def edit(t):
        import torch

        return {**t, key: torch.ones(shape)}

    return edit


def _rank4_in_layer0_q(t):
    """Mixed ranks: L0 q_proj cut to rank 4, everything else left at rank 8."""
    return {
        k: (v[:4] if k == f"{L0}.q_proj.lora_A.weight" else v[:, :4] if k == f"{L0}.q_proj.lora_B.weight" else v)
        for k, v in t.items()
    }


def _resized_lm_head(t):
    import torch

    return {**t, LM_HEAD: torch.cat([t[LM_HEAD], torch.zeros(8, t[LM_HEAD].shape[1])])}


def _mlx_lm_config(adapter_dir: Path) -> None:
    """An mlx-lm config in place of PEFT's (no ``peft_type``)."""
    params = {"rank": 8, "scale": 2.0, "dropout": 0.0, "keys": ["self_attn.q_proj", "self_attn.v_proj"]}
    write_config(adapter_dir, {"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": params})


def _zero_bytes(adapter_dir: Path) -> None:
    (adapter_dir / WEIGHTS_NAME).write_bytes(b"")


def _without_weights(adapter_dir: Path) -> None:
    (adapter_dir / WEIGHTS_NAME).unlink()


@dataclass(frozen=True)
class Corruption:
    """An edit of a real sample: ``apply(adapter_dir)`` changes a copy in place."""

    sample: str
    apply: Callable[[Path], None] = field(repr=False)


CORRUPTIONS: dict[str, Corruption] = {
    "r_edited_8_to_16": Corruption("plain_qv", edit_config(r=16)),
    "rank_pattern_removed": Corruption("rank_alpha_pattern", edit_config(rank_pattern={})),
    "lora_B_transposed": Corruption("plain_qv", edit_tensors(_transpose(f"{L0}.q_proj.lora_B.weight"))),
    "tensor_renamed": Corruption(
        "plain_qv", edit_tensors(_rename(f"{L0}.q_proj.lora_A.weight", f"{L0}.q_proj.lora_X.weight"))
    ),
    "lora_alpha_edited": Corruption("plain_qv", edit_config(lora_alpha=64)),
    "target_modules_reduced": Corruption("plain_qv", edit_config(target_modules=["q_proj"])),
    "target_modules_extended": Corruption("plain_qv", edit_config(target_modules=["q_proj", "k_proj", "v_proj"])),
    "target_modules_bare_name_as_regex": Corruption("plain_qv", edit_config(target_modules="q_proj")),
    "target_modules_match_nothing": Corruption("plain_qv", edit_config(target_modules=["nope_proj"])),
    "target_modules_regex_subset": Corruption("plain_qv", edit_config(target_modules=r".*\.q_proj")),
    "layers_to_transform_changed": Corruption("layers_to_transform", edit_config(layers_to_transform=[1])),
    "use_dora_true_to_false": Corruption("dora", edit_config(use_dora=False)),
    "use_dora_false_to_true": Corruption("plain_qv", edit_config(use_dora=True)),
    "modules_to_save_without_tensor": Corruption("plain_qv", edit_config(modules_to_save=["lm_head"])),
    "peft_type_missing": Corruption("plain_qv", edit_config(peft_type=DELETE)),
    "peft_type_lower_case": Corruption("plain_qv", edit_config(peft_type="lora")),
    "unknown_config_key": Corruption("plain_qv", edit_config(from_the_future=True)),
    "weights_without_tensors": Corruption("plain_qv", edit_tensors(lambda t: {})),
    "weights_zero_bytes": Corruption("plain_qv", _zero_bytes),
    "weights_absent": Corruption("plain_qv", _without_weights),
    "extra_tensor_wrong_shape": Corruption("plain_qv", edit_tensors(_with_extra(f"{L0}.k_proj.lora_A.weight", (3, 5)))),
    "mixed_ranks_without_rank_pattern": Corruption("plain_qv", edit_tensors(_rank4_in_layer0_q)),
    "modules_to_save_resized_vocab": Corruption("modules_to_save_lm_head", edit_tensors(_resized_lm_head)),
    "mlx_lm_style_config": Corruption("plain_qv", _mlx_lm_config),
    "r_zero": Corruption("plain_qv", edit_config(r=0)),
    "bias_bogus": Corruption("plain_qv", edit_config(bias="bogus")),
    "task_type_bogus": Corruption("plain_qv", edit_config(task_type="FOO")),
    "rank_pattern_key_matches_nothing": Corruption("plain_qv", edit_config(rank_pattern={"nope_proj": 4})),
    "fan_in_fan_out_false_on_conv1d": Corruption("gpt2_conv1d_fan_in_fan_out", edit_config(fan_in_fan_out=False)),
    "prefix_stripped": Corruption(
        "plain_qv", edit_tensors(lambda t: {k.removeprefix("base_model.model."): v for k, v in t.items()})
    ),
}


def copy_with_base_config(sample: PeftSample, dest_dir: str | Path) -> Path:
    """A copy of ``sample``'s adapter folder with its base model's ``config.json`` beside the adapter."""
    dest_dir = Path(dest_dir)
    shutil.copytree(sample.adapter_dir, dest_dir)
    write_base_config(sample.base, dest_dir)
    return dest_dir


def corrupted_copy(sample: PeftSample, corruption: str, dest_dir: str | Path) -> Path:
    """A copy of ``sample``'s adapter folder in ``dest_dir`` with ``corruption`` applied."""
    dest_dir = Path(dest_dir)
    shutil.copytree(sample.adapter_dir, dest_dir)
    CORRUPTIONS[corruption].apply(dest_dir)
    return dest_dir
