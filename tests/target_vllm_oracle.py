"""vLLM 0.33.0 (and 0.31.0) as an oracle for the vllm target, on CPU, and the extra PEFT samples its rules need.

vLLM needs a GPU to serve, but its LoRA config check is plain Python: the wheel,
installed with ``--no-deps`` into a venv of its own (tests/runtime_venvs.py) next to
the few pure-Python packages its import chain needs, imports ``PEFTHelper`` and
``LoRAConfig`` on CPU. ``ORACLE`` runs, for each adapter folder:

- ``PEFTHelper.from_local_dir`` + ``validate_legal(LoRAConfig(max_lora_rank=N))``:
  vLLM's own config verdict (rank, DoRA, bias, modules_to_save, required keys, ...);
- vLLM's own ``parse_fine_tuned_lora_name`` and ``is_base_embedding_weights`` on every
  tensor name of the weights file, in the order ``LoRAModel.from_lora_tensors``
  (vllm/lora/lora_model.py v0.33.0 L137-150) calls them. ``vllm.lora.utils`` imports
  the whole engine (GPU kernels), so the two functions are taken from the installed
  file's source with ``ast`` and run as they are: vLLM's code, not a copy of ours.

What this cannot run: the check of tensor module names against the base model's
LoRA-capable modules (it needs the model), and the load into GPU buffers.
"""

from __future__ import annotations

from pathlib import Path

import runtime_venvs

VLLM = "vllm==0.33.0"
#: The last release before rank_pattern/alpha_pattern were read (0.32.0), for AG907 and AG904.
VLLM_0_31 = "vllm==0.31.0"
#: What ``from vllm.lora.peft_helper import PEFTHelper`` imports beyond the test env (found by running it).
IMPORT_DEPS = (
    "cbor2==6.3.0", "pyzmq==27.3.0", "aiohttp==3.14.5", "multidict==7.2.1", "yarl==1.25.1",
    "propcache==0.5.4", "aiohappyeyeballs==2.7.1", "aiosignal==1.4.0", "frozenlist==1.8.0",
    "openai-harmony==0.0.8", "openai==3.57.0", "sniffio==1.3.1",
)
#: 0.31.0's PEFTHelper import chain reaches further (multimodal, structured output).
IMPORT_DEPS_0_31 = IMPORT_DEPS + (
    "pybase64==1.5.1", "cachetools==8.0.2", "cloudpickle==3.1.3", "uvloop==0.23.0", "py-cpuinfo==9.0.0",
    "prometheus_client==0.26.0", "xgrammar==0.2.9", "apache-tvm-ffi==0.1.15.post2",
    "partial-json-parser==0.2.1.1.post7", "einops==0.8.2",
)

ORACLE = r'''
import ast, importlib.util, json, os, site, sys
from pathlib import Path

# The inherited test env may itself reach torch through a .pth (shared.pth); sys.path entries
# from a .pth are not scanned for .pth files, so scan them here (appended: the venv's own first).
for entry in list(sys.path):
    if entry.endswith("site-packages"):
        site.addsitedir(entry)

from vllm.config.lora import LoRAConfig
from vllm.lora.peft_helper import PEFTHelper

utils_path = Path(importlib.util.find_spec("vllm").submodule_search_locations[0]) / "lora" / "utils.py"
tree = ast.parse(utils_path.read_text())
wanted = {"parse_fine_tuned_lora_name", "is_base_embedding_weights"}
module = ast.Module(body=[n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted], type_ignores=[])
namespace = {}
exec(compile(module, str(utils_path), "exec"), namespace)
parse, is_base_embedding = namespace["parse_fine_tuned_lora_name"], namespace["is_base_embedding_weights"]


def tensor_names(adapter_dir):
    safetensors_path = os.path.join(adapter_dir, "adapter_model.safetensors")
    bin_path = os.path.join(adapter_dir, "adapter_model.bin")
    if os.path.isfile(safetensors_path):
        from safetensors import safe_open
        with safe_open(safetensors_path, framework="pt") as f:
            return list(f.keys())
    if os.path.isfile(bin_path):
        import torch
        return list(torch.load(bin_path, map_location="cpu", weights_only=True))
    raise ValueError(f"{adapter_dir} doesn't contain tensors")


def verdict(adapter_dir, max_lora_rank):
    try:
        helper = PEFTHelper.from_local_dir(adapter_dir, None)
        helper.validate_legal(LoRAConfig(max_lora_rank=max_lora_rank))
    except Exception as exc:
        return {"config_error": f"{type(exc).__name__}: {exc}", "tensor_errors": []}
    # The scale vLLM gives every module, and whether this release can give one per module.
    result = {"config_error": None, "tensor_errors": [], "scale": helper.vllm_lora_scaling_factor,
              "per_module_scale": hasattr(helper, "get_rank_and_scaling"), "parsed": {}}
    try:
        names = tensor_names(adapter_dir)
    except Exception as exc:
        result["tensor_errors"].append(f"{type(exc).__name__}: {exc}")
        return result
    for name in names:
        if is_base_embedding(name):
            continue
        try:
            result["parsed"][name] = list(parse(name, None))  # [module, is_lora_a]
        except ValueError as exc:
            result["tensor_errors"].append(str(exc))
    return result


jobs = json.loads(sys.argv[1])
print(json.dumps({key: verdict(path, rank) for key, (path, rank) in jobs.items()}))
'''


def vllm_python(release: str = VLLM) -> Path:
    deps = IMPORT_DEPS_0_31 if release == VLLM_0_31 else IMPORT_DEPS
    return runtime_venvs.runtime_python((release, *deps))


def run_oracle(jobs: dict[str, tuple[Path, int]], release: str = VLLM) -> dict[str, dict]:
    """``{key: (adapter_dir, max_lora_rank)}`` -> ``{key: verdict}``, in one process of ``release``.

    A verdict holds ``config_error`` (PEFTHelper / validate_legal), ``tensor_errors`` (the parser),
    and when the config passed: ``scale``, ``per_module_scale`` and ``parsed`` (name -> [module, is_lora_a]).
    """
    import json

    payload = json.dumps({k: (str(path), rank) for k, (path, rank) in jobs.items()})
    return runtime_venvs.run_json(vllm_python(release), ORACLE, payload, timeout=900)


def refused(verdict: dict) -> bool:
    return verdict["config_error"] is not None or bool(verdict["tensor_errors"])


# -- extra PEFT samples: real save_pretrained output, for the rules the corpus does not reach --


def build(config: dict, dest_dir: Path, base: str = "llama") -> Path:
    """``save_pretrained`` of a tiny seeded model with ``LoraConfig(**config)`` (peft_writers' recipe)."""
    import warnings

    import peft_writers
    from peft import LoraConfig, get_peft_model

    model_base = peft_writers.make_base(base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(model_base, LoraConfig(task_type="CAUSAL_LM", **config))
        peft_writers._train(model)
        model.save_pretrained(dest_dir)
    return Path(dest_dir)


QV = ["q_proj", "v_proj"]
EXTRA_CASES: dict[str, dict] = {
    # r above vLLM's default max_lora_rank 16, below the largest it accepts.
    "rank_32": {"r": 32, "lora_alpha": 32, "target_modules": QV},
    # r above 256 (the largest --max-lora-rank before vLLM 0.8) and below 512.
    "rank_300": {"r": 300, "lora_alpha": 300, "target_modules": QV},
    # r above 512, the largest --max-lora-rank any vLLM accepts.
    "rank_520": {"r": 520, "lora_alpha": 520, "target_modules": QV},
    # One module's rank from rank_pattern above max_lora_rank 32, r below it.
    "rank_pattern_64": {"r": 8, "lora_alpha": 16, "target_modules": QV, "rank_pattern": {"q_proj": 64}},
    # rank_pattern + alpha_pattern that keep every module's scale at lora_alpha / r = 2.
    "pattern_same_scale": {
        "r": 8, "lora_alpha": 16, "target_modules": QV, "rank_pattern": {"q_proj": 4}, "alpha_pattern": {"q_proj": 8},
    },
    # bias="all" on a base with no biases: nothing extra is saved, only the config says it.
    "llama_bias_all": {"r": 8, "lora_alpha": 16, "target_modules": QV, "bias": "all"},
    # A PiSSA init: the saved adapter assumes the base PEFT modifies on load.
    "pissa": {"r": 8, "lora_alpha": 16, "target_modules": QV, "init_lora_weights": "pissa"},
}
