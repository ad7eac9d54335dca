r"""PEFT releases as oracles for the PEFT target profile: samples the corpus lacks, and the load script.

``peft_writers`` holds the real ``save_pretrained`` corpus; the profile's rules
need five more adapters, written the same way (a tiny seeded base, "trained"
tensors, the stock ``save_pretrained``):

- ``alpha_behind_rank_key``: a rank_pattern key and an alpha_pattern key both match
  layer 0's q_proj (PEFT up to 0.13 searched both dicts as one list);
- ``alternation_rank_key``: a rank_pattern key ``q_proj|v_proj`` (before 0.15 PEFT wrapped it
  unbracketed, ``.*\.q_proj|v_proj$``, so the ``|`` split the pattern);
- ``escaped_full_name_rank_key``: a rank_pattern key that is a module's escaped full name
  (``model\.layers\.0\.self_attn\.q_proj``), as a user (and an earlier AG706 fix) wrote it;
- ``conv1d_lora``: plain LoRA on an ``nn.Conv1d`` (PEFT has it from 0.15);
- ``conv3d_lora``: plain LoRA on an ``nn.Conv3d`` (PEFT has it from 0.14).

``LOAD_SCRIPT`` runs in another release's venv (tests/runtime_venvs.py): it imports
this module and ``peft_writers`` from the tests folder, loads each adapter with
that release's ``PeftModel.from_pretrained`` on a fresh base and prints the
outcomes as one JSON line. Nothing here imports adapter_guard (the old release's
venv does not have it); torch and peft are imported inside functions.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import warnings
from pathlib import Path
from typing import Any

import peft_writers
from peft_writers import CONV_EMB, LLAMA, PeftCase, PeftSample

TESTS_DIR = Path(__file__).resolve().parent
CONV3D = "conv3d"


@functools.cache
def _conv3d_class():
    import torch
    from torch import nn

    class Conv3dNet(nn.Module):
        """A volume model whose forward takes ``input_ids``, so the shared causal-LM probe drives it."""

        def __init__(self):
            super().__init__()
            self.conv3d = nn.Conv3d(2, 4, 3)

        def forward(self, input_ids):
            volume = torch.sin(torch.arange(2 * 5 * 5 * 5, dtype=torch.float32).reshape(1, 2, 5, 5, 5) * 0.37)
            volume = volume + 0.01 * input_ids.float().sum()
            return _Logits(self.conv3d(volume).flatten()[None])

    return Conv3dNet


@dataclasses.dataclass
class _Logits:
    logits: Any


def make_base(kind: str):
    """A fresh seeded base of ``kind``: peft_writers' kinds, or ``conv3d``."""
    if kind != CONV3D:
        return peft_writers.make_base(kind)
    import torch

    torch.manual_seed(peft_writers.BASE_SEED)
    return _conv3d_class()().eval()


CASES: dict[str, PeftCase] = {
    "alpha_behind_rank_key": PeftCase(
        LLAMA,
        {
            "r": 8,
            "lora_alpha": 16,
            "target_modules": ["q_proj", "v_proj"],
            "rank_pattern": {"q_proj": 4},
            "alpha_pattern": {"layers.0.self_attn.q_proj": 32},
        },
    ),
    "alternation_rank_key": PeftCase(
        LLAMA,
        {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "k_proj", "v_proj"], "rank_pattern": {"q_proj|v_proj": 4}},
    ),
    # re.escape of the full name (what AG706 wrote before it chose unique suffixes): only PEFT 0.15+ matches it.
    "escaped_full_name_rank_key": PeftCase(
        LLAMA,
        {
            "r": 8,
            "lora_alpha": 16,
            "target_modules": ["q_proj", "v_proj"],
            "rank_pattern": {r"model\.layers\.0\.self_attn\.q_proj": 4},
        },
    ),
    "conv1d_lora": PeftCase(CONV_EMB, {"r": 4, "lora_alpha": 8, "target_modules": ["conv1d", "linear"]}),
    "conv3d_lora": PeftCase(CONV3D, {"r": 4, "lora_alpha": 8, "target_modules": ["conv3d"]}),
}


def build_sample(name: str, dest_dir: str | Path) -> PeftSample:
    """Write sample ``name`` of ``CASES`` with the installed PEFT's ``save_pretrained``."""
    from peft import LoraConfig, get_peft_model

    case = CASES[name]
    model = make_base(case.base)
    task_type = "CAUSAL_LM" if case.base == LLAMA else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(model, LoraConfig(task_type=task_type, **case.config))
    peft_writers._train(model)
    model.eval()
    probe_kind = CONV_EMB if case.base == CONV_EMB else LLAMA  # Conv3dNet answers the causal-LM probe
    live = peft_writers.probe_output(model, probe_kind)
    model.save_pretrained(Path(dest_dir))
    return PeftSample(name, Path(dest_dir), case.base, live)


def load(adapter_dir: str | Path, kind: str, live) -> peft_writers.Outcome:
    """``PeftModel.from_pretrained`` of the installed PEFT on a fresh ``kind`` base, against ``live``."""
    return peft_writers.peft_load(adapter_dir, functools.partial(make_base, kind), live=live)


def load_jobs(jobs: dict[str, dict[str, str]]) -> dict[str, Any]:
    """What a release's venv prints: its version, its ``LoraConfig`` fields, and each job
    {dir, base, live (a .npy path)} loaded."""
    import numpy as np
    import peft
    from peft import LoraConfig

    outcomes = {}
    for name, job in jobs.items():
        outcomes[name] = dataclasses.asdict(load(job["dir"], job["base"], np.load(job["live"])))
    fields = sorted(f.name for f in dataclasses.fields(LoraConfig))
    return {"peft": peft.__version__, "fields": fields, "outcomes": outcomes}


LOAD_SCRIPT = f"""
import json, sys
sys.path.insert(0, {str(TESTS_DIR)!r})
import target_peft_runtime
with open(sys.argv[1], encoding="utf-8") as jobs:
    print(json.dumps(target_peft_runtime.load_jobs(json.load(jobs))))
"""


def outcome(data: dict[str, Any]) -> peft_writers.Outcome:
    """An Outcome back from a venv's JSON."""
    fields = {f.name for f in dataclasses.fields(peft_writers.Outcome)}
    return peft_writers.Outcome(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields})


def write_jobs(samples: dict[str, tuple[Path, PeftSample]], dest: Path) -> Path:
    """The jobs file for ``LOAD_SCRIPT``: each adapter folder with its sample's base and live output."""
    import numpy as np

    jobs = {}
    for index, (name, (adapter_dir, sample)) in enumerate(samples.items()):
        live = dest / f"{index}.live.npy"  # names may hold a "/"
        np.save(live, sample.live)
        jobs[name] = {"dir": str(adapter_dir), "base": sample.base, "live": str(live)}
    path = dest / "jobs.json"
    path.write_text(json.dumps(jobs), encoding="utf-8")
    return path
