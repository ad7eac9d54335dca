"""llama.cpp's real ``convert_lora_to_gguf.py``, run on PEFT adapters, and what llama.cpp makes of the result.

The converter comes from the package registry: the ``llama-cpp-python`` sdist vendors
llama.cpp (``vendor/llama.cpp``: the converter, its ``conversion/`` package and
``gguf-py``). Three releases are pinned (:class:`Pin`): 0.3.36 vendors build b11312
(the profile's latest), 0.3.5 vendors b4295 and 0.2.82 vendors b3353 (their CHANGELOGs
name the commits; the test checks them). Each sdist is downloaded once with ``pip
download`` and the converter's files are kept under the runtime cache
(``tests/runtime_venvs.py``), beside a venv holding the ``gguf`` package from PyPI
(``inherit=True``: torch, transformers, safetensors and numpy come from the test env).

- :func:`convert` runs the converter on several adapters in one process (the
  converter's ``__main__`` through ``runpy``; a ``sys.exit`` is its refusal) and reports,
  per adapter, the exit code, the exception and the converter's ERROR log lines.
- :func:`read_gguf` reads the GGUF files with PyPI's ``gguf.GGUFReader``: the
  ``adapter.lora.alpha`` written, and every tensor (its ``ne`` shape and data).
- :func:`llama_cpp_load` applies llama.cpp's own rules to a GGUF adapter: the shape
  checks of ``llama_adapter_lora_init_impl`` (src/llama-adapter.cpp @ b11312 L359-L369),
  the ``*_norm.weight`` skip (L290-L293) and the scale ``alpha / rank`` with rank =
  ``lora_b->ne[0]`` (``get_scale``, src/llama-adapter.h L53-L57): each module's weight
  update as llama.cpp applies it, or its refusal. :func:`peft_updates` is PEFT's own ``get_delta_weight``
  for each module of the same adapter, loaded by ``PeftModel.from_pretrained``.

Nothing here runs code from an adapter: the converter is llama.cpp's, the adapters are
written by PEFT in the test.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import runtime_venvs

@dataclass(frozen=True)
class Pin:
    """A llama-cpp-python sdist and the llama.cpp build it vendors (its CHANGELOG names the commit;
    the build tag is the first ``b*`` tag containing it: ``git tag --contains`` on ggml-org/llama.cpp)."""

    sdist: str
    commit: str
    tag: str


#: The newest release, the profile's ``latest``. (b11312 for 0c1e57098: public build labels
#: "b11312-0c1e57098"; the mirror's history stops at b4747.)
LATEST = Pin("0.3.36", "0c1e57098", "b11312")
#: Between b3959 and b4446: "Embeddings is present" but no lora_embedding_A/B, no norms.
B4295 = Pin("0.3.5", "26a8406ba", "b4295")
#: Before b3400: no convert_lora_to_gguf.py at all.
B3353 = Pin("0.2.82", "7fdb6f73e", "b3353")

GGUF = "gguf==0.19.0"
#: The converter's files inside the sdist's vendor/llama.cpp (conversion/ is b8xxx+'s model package).
CONVERTER_FILES = ("convert_lora_to_gguf.py", "convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def converter_dir(pin: Pin = LATEST) -> Path:
    """vendor/llama.cpp's converter files of a pinned sdist, and its CHANGELOG.md (downloaded on first use)."""
    home = runtime_venvs.root() / f"llama-cpp-python-{pin.sdist}-converter"
    ready = home / ".ready"
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f".{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            with tempfile.TemporaryDirectory() as download:
                subprocess.run(
                    [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                     f"llama-cpp-python=={pin.sdist}", "--no-deps", "--no-binary", ":all:", "-d", download],
                    check=True, timeout=900,
                )
                (sdist,) = Path(download).glob("*.tar.gz")
                with tarfile.open(sdist) as tar:
                    top = tar.getnames()[0].split("/")[0]
                    vendor = f"{top}/vendor/llama.cpp/"
                    members = []
                    for member in tar.getmembers():
                        if member.name == f"{top}/CHANGELOG.md":
                            member.name = "CHANGELOG.md"
                        elif member.name.startswith(vendor) and member.name[len(vendor):].startswith(CONVERTER_FILES):
                            member.name = member.name[len(vendor):]
                        else:
                            continue
                        members.append(member)
                    tar.extractall(home, members=members, filter="data")
            ready.write_text(pin.sdist)
    return home


def vendored_commit(pin: Pin) -> str:
    """The llama.cpp commit the sdist's CHANGELOG gives for its own release."""
    changelog = (converter_dir(pin) / "CHANGELOG.md").read_text()
    section = changelog.split(f"## [{pin.sdist}]", 1)[1].split("\n## [", 1)[0]
    (line,) = [line for line in section.splitlines() if "Update llama.cpp to" in line or "update llama.cpp to" in line]
    return line.rsplit("llama.cpp@", 1)[1].strip()


def converter_python() -> Path:
    """A venv with PyPI's ``gguf`` (the GGUF reader) over the test env's torch/transformers."""
    python = runtime_venvs.runtime_python((GGUF,), inherit=True)
    # inherit=True lists this interpreter's own site-packages only; a test env that reaches
    # more through a .pth file (a worktree venv over a shared one) needs those too.
    shared = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    purelib = next(python.parent.parent.glob("lib/python*/site-packages"))
    extra = purelib / "zz_inherit_test_env_paths.pth"
    text = "\n".join(shared) + "\n"
    if not extra.is_file() or extra.read_text() != text:
        extra.write_text(text)
    return python


# Runs in the converter's python: argv = converter dir, JSON list of {adapter, base, outfile}.
CONVERT_SCRIPT = r"""
import json, logging, runpy, sys
from pathlib import Path

converter = Path(sys.argv[1])
jobs = json.loads(sys.argv[2])
sys.path.insert(0, str(converter))  # the converter imports its conversion/ package from beside it


class Errors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


errors = Errors()
logging.getLogger().addHandler(errors)
results = []
for job in jobs:
    errors.lines = []
    sys.argv = ["convert_lora_to_gguf.py", "--base", job["base"], "--outfile", job["outfile"], job["adapter"]]
    result = {"exit": 0, "exception": None}
    try:
        runpy.run_path(str(converter / "convert_lora_to_gguf.py"), run_name="__main__")
    except SystemExit as exc:
        result["exit"] = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        result["exit"], result["exception"] = 1, f"{type(exc).__name__}: {exc}"
    result["errors"] = list(errors.lines)
    results.append(result)
print(json.dumps(results))
"""

# Runs in the same venv, without the vendored gguf-py: PyPI's gguf reads the files.
READ_SCRIPT = r"""
import json, sys
import numpy as np
from gguf import GGUFReader

out = []
for path in sys.argv[1:]:
    reader = GGUFReader(path)
    fields = {name: field.contents() for name, field in reader.fields.items()
              if name in ("general.type", "general.architecture", "adapter.type", "adapter.lora.alpha")}
    tensors = {t.name: {"ne": [int(n) for n in t.shape], "data": np.asarray(t.data, dtype=np.float64).tolist()}
               for t in reader.tensors}
    out.append({"fields": fields, "tensors": tensors})
print(json.dumps(out))
"""


@dataclass
class Conversion:
    """What the converter did with one adapter."""

    exit: int
    exception: str | None
    errors: list[str]  # the converter's ERROR log lines, verbatim
    gguf: Path | None  # the file written (None when it stopped)

    @property
    def converted(self) -> bool:
        return self.exit == 0 and self.exception is None and self.gguf is not None


def convert(jobs: list[tuple[Path, Path]], out_dir: Path, pin: Pin = LATEST) -> list[Conversion]:
    """Run the pinned converter on each ``(adapter_dir, base_dir)`` (base_dir holds the base's config.json)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    outfiles = [out_dir / f"{i}.gguf" for i in range(len(jobs))]
    payload = [
        {"adapter": str(adapter), "base": str(base), "outfile": str(outfile)}
        for (adapter, base), outfile in zip(jobs, outfiles)
    ]
    raw = runtime_venvs.run_json(converter_python(), CONVERT_SCRIPT, str(converter_dir(pin)), json.dumps(payload))
    return [
        Conversion(r["exit"], r["exception"], r["errors"], outfile if outfile.is_file() and r["exit"] == 0 else None)
        for r, outfile in zip(raw, outfiles)
    ]


@dataclass
class GgufAdapter:
    fields: dict[str, Any]
    #: name -> (ne, data as a numpy array in torch order, i.e. ne reversed)
    tensors: dict[str, tuple[tuple[int, ...], Any]] = field(repr=False)

    @property
    def alpha(self) -> float:
        return self.fields["adapter.lora.alpha"]


def read_gguf(paths: list[Path]) -> list[GgufAdapter]:
    import numpy as np

    raw = runtime_venvs.run_json(converter_python(), READ_SCRIPT, *map(str, paths))
    return [
        GgufAdapter(r["fields"], {n: (tuple(t["ne"]), np.array(t["data"])) for n, t in r["tensors"].items()})
        for r in raw
    ]


# -- llama.cpp's reading of a GGUF adapter (src/llama-adapter.cpp, src/llama-adapter.h @ b11312) ------


def llama_cpp_load(
    adapter: GgufAdapter, base_ne: dict[str, tuple[int, int]]
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """What llama.cpp's adapter loader makes of a GGUF adapter: each base tensor's update (in
    torch order, rows = ne[1]), the tensors it refuses, with its message (it throws on the
    first, so one refusal means the adapter does not load), and the tensors it skips.

    ``base_ne`` is each base tensor's ``ne`` in the converted model (``blk.0.attn_q.weight``:
    (in, out)). Norm vectors are skipped, as llama.cpp skips them.
    """
    pairs: dict[str, dict[str, Any]] = {}
    refused: dict[str, str] = {}
    skipped: list[str] = []
    for name, (ne, data) in adapter.tensors.items():
        if name.endswith(".lora_a"):
            pairs.setdefault(name[: -len(".lora_a")], {})["a"] = (ne, data)
        elif name.endswith(".lora_b"):
            pairs.setdefault(name[: -len(".lora_b")], {})["b"] = (ne, data)
        elif name.endswith("_norm.weight"):
            skipped.append(name)  # "TODO: add support for norm vector"
        else:
            refused[name] = f"LoRA tensor '{name}' has unexpected suffix"
    updates = {}
    for name, pair in pairs.items():
        if "a" not in pair or "b" not in pair:
            refused[name] = f"LoRA tensor pair for '{name}' is missing one component"
            continue
        (a_ne, a), (b_ne, b) = pair["a"], pair["b"]
        model_ne = base_ne.get(name)
        if model_ne is None:
            refused[name] = f"LoRA tensor '{name}' does not exist in base model"
            continue
        rank = b_ne[0]
        scale = adapter.alpha / rank if adapter.alpha else 1.0
        if name.endswith("token_embd.weight"):
            if model_ne[0] != b_ne[1] or model_ne[1] != a_ne[1]:
                refused[name] = f"tensor '{name}' has incorrect shape (hint: maybe wrong base model?)"
                continue
            # get_rows(lora_a, tokens), then mul_mat(lora_b, .): row t of the table gains B a[t]
            updates[name] = scale * (a @ b.T)
        else:
            if model_ne[0] != a_ne[0] or model_ne[1] != b_ne[1]:
                refused[name] = f"tensor '{name}' has incorrect shape (hint: maybe wrong base model?)"
                continue
            if a_ne[1] != b_ne[0]:
                refused[name] = "lora_a tensor is not transposed"
                continue
            updates[name] = scale * (b @ a)  # mul_mat(b, mul_mat(a, x)): W + scale * B A
    return updates, refused, skipped


# -- the tiny bases' tensors, in llama.cpp's names (gguf-py tensor_mapping for these archs) ------------

LLAMA_MODULES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
GPT2_MODULES = {"attn_qkv": "attn.c_attn", "attn_output": "attn.c_proj", "ffn_up": "mlp.c_fc", "ffn_down": "mlp.c_proj"}


def gguf_to_peft(kind: str) -> dict[str, str]:
    """llama.cpp's tensor name -> the PEFT module name (no ``base_model.model.``) for a tiny base."""
    if kind == "llama":
        names = {f"blk.{i}.{g}.weight": f"model.layers.{i}.{p}" for i in range(2) for g, p in LLAMA_MODULES.items()}
        names["token_embd.weight"] = "model.embed_tokens"
        names["output.weight"] = "lm_head"
        return names
    if kind == "gpt2":
        return {f"blk.{i}.{g}.weight": f"transformer.h.{i}.{p}" for i in range(2) for g, p in GPT2_MODULES.items()}
    raise ValueError(kind)


def base_ne(model, kind: str) -> dict[str, tuple[int, int]]:
    """Each base tensor's ``ne`` after conversion: Linear (out, in) and Embedding (num, dim) keep
    their torch order; GPT-2's Conv1D (in, out) is transposed (conversion/gpt2.py L33-L34)."""
    modules = dict(model.named_modules())
    out = {}
    for gguf_name, peft_name in gguf_to_peft(kind).items():
        weight = modules[peft_name].weight
        rows, cols = weight.shape
        if kind == "gpt2" and peft_name != "lm_head":
            rows, cols = cols, rows
        out[gguf_name] = (cols, rows)
    return out


def _rope_rows(delta, n_head: int):
    """The converter's row order for Llama's attn_q/attn_k (LlamaModel.permute, conversion/llama.py
    @ b11312 L176-L181, applied in modify_tensors L262-L264): the base weight and the update alike."""
    return delta.reshape(n_head, 2, delta.shape[0] // n_head // 2, *delta.shape[1:]).swapaxes(1, 2).reshape(delta.shape)


def peft_updates(adapter_dir: Path, base_factory, kind: str) -> dict[str, Any]:
    """PEFT's own update (``get_delta_weight``) of each LoRA module, keyed by llama.cpp's tensor
    name, in the layout the converter gives the base weight (so it can be compared with
    :func:`llama_cpp_load`)."""
    import warnings

    from peft import PeftModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PeftModel.from_pretrained(base_factory(), str(adapter_dir))
    modules = dict(model.base_model.model.named_modules())
    updates = {}
    for gguf_name, peft_name in gguf_to_peft(kind).items():
        module = modules.get(peft_name)
        if module is None or "default" not in getattr(module, "scaling", {}):
            continue
        delta = module.get_delta_weight("default").detach().double().numpy()
        if kind == "gpt2":
            delta = delta.T  # Conv1D stores (in, out); the converter transposes the base to (out, in)
        if kind == "llama" and gguf_name.endswith(("attn_q.weight", "attn_k.weight")):
            delta = _rope_rows(delta, model.base_model.model.config.num_attention_heads)
        updates[gguf_name] = delta
    return updates


def same_update(ours, theirs) -> bool:
    import numpy as np

    return ours.shape == theirs.shape and bool(np.allclose(ours, theirs, rtol=1e-4, atol=1e-7))


def write_base_dir(kind: str, dest: Path) -> Path:
    """The base's config.json, as ``from_pretrained`` leaves it (with ``architectures``): all the
    converter reads of the base (``--base``)."""
    import peft_writers

    dest.mkdir(parents=True, exist_ok=True)
    config = {"llama": peft_writers.llama_config, "gpt2": peft_writers.gpt2_config}[kind]()
    config.architectures = [{"llama": "LlamaForCausalLM", "gpt2": "GPT2LMHeadModel"}[kind]]
    config.save_pretrained(dest)
    return dest
