"""The llama.cpp target (``--target llama.cpp``), proven with llama.cpp's real converter.

Every adapter here is written by PEFT's ``save_pretrained`` on a tiny seeded model
(tests/peft_writers.py; a few config edits where a rule needs a particular key). The
real ``convert_lora_to_gguf.py`` of build b11312 (vendored by the ``llama-cpp-python``
0.3.36 sdist from PyPI) converts it; PyPI's ``gguf`` reads the GGUF it wrote; and
llama.cpp's loader rules (shape checks, norm skip, scale = alpha / rank; cited in
tests/target_llama_cpp_converter.py) turn the GGUF into each module's weight update,
which is compared with PEFT's own ``get_delta_weight`` for the same adapter. An adapter
"converts correctly" when the converter exits 0, llama.cpp's checks pass, and every
module's update equals PEFT's. adapter-guard's verdict must agree, adapter by adapter.

The version bounds come from ggml-org/llama.cpp's history (cited on the tests) and are
checked with the converters of two older builds, also vendored by llama-cpp-python sdists:
b4295 (before b4446's embedding LoRA and norm vectors) and b3353 (before the converter).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import peft_writers as pw
import runtime_venvs
import target_llama_cpp_converter as llama
from adapter_guard.engine import process
from adapter_guard.settings import Settings
from adapter_guard.targets import PROFILES, parse_target

PROFILE = PROFILES["llama.cpp"]


# -- adapter-guard's side ----------------------------------------------------------------------


@dataclass
class Verdict:
    cell: str  # the matrix cell: "ok" / "fails"
    codes: list[str]
    messages: list[str]


def verdict(adapter_dir: Path, version: str | None = None) -> Verdict:
    target = parse_target("llama.cpp" + (f"@{version}" if version else ""))
    result = process(adapter_dir / pw.CONFIG_NAME, Settings(paths=[adapter_dir], root=adapter_dir, targets=[target]))
    mine = [f for f in result.findings if f.extra.get("target") == target.label]
    return Verdict(result.targets.get(target.label, "n/a"), [f.code for f in mine], [f.message for f in mine])


# -- the samples ---------------------------------------------------------------------------------

QV = pw.QV

#: Adapters written with PEFT's save_pretrained for rules peft_writers.CASES has no sample for.
EXTRA_CASES: dict[str, pw.PeftCase] = {
    "llama_lora_bias": pw.PeftCase(pw.LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": QV, "lora_bias": True}),
    "modules_to_save_embed": pw.PeftCase(
        pw.LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": QV, "modules_to_save": ["embed_tokens"]}
    ),
    "modules_to_save_norm": pw.PeftCase(
        pw.LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": QV, "modules_to_save": ["input_layernorm"]}
    ),
    # attn.c_proj is square (64 -> 64), mlp.c_proj is not (256 -> 64).
    "gpt2_c_proj": pw.PeftCase(
        pw.GPT2, {"r": 4, "lora_alpha": 8, "target_modules": ["c_proj"], "fan_in_fan_out": True}
    ),
    "rslora_r8": pw.PeftCase(pw.LLAMA, {"r": 8, "lora_alpha": 16, "target_modules": QV, "use_rslora": True}),
    "rslora_bin": pw.PeftCase(
        pw.LLAMA, {"r": 16, "lora_alpha": 16, "target_modules": QV, "use_rslora": True}, safe_serialization=False
    ),
    "rslora_r1": pw.PeftCase(pw.LLAMA, {"r": 1, "lora_alpha": 16, "target_modules": QV, "use_rslora": True}),
}


def build_extra(name: str, dest: Path) -> Path:
    """``peft_writers.build_sample`` for an EXTRA_CASES entry (same base, training and save)."""
    pw.CASES[name] = EXTRA_CASES[name]
    try:
        return pw.build_sample(name, dest).adapter_dir
    finally:
        del pw.CASES[name]


def edited(source: Path, dest: Path, **changes: Any) -> Path:
    """A copy of a written adapter with config keys changed (the tensors untouched)."""
    shutil.copytree(source, dest)
    config = pw.read_config(dest)
    config.update(changes)
    pw.write_config(dest, {k: v for k, v in config.items() if v is not pw.DELETE})
    return dest


def folded_alpha(config: dict[str, Any]) -> float:
    """What AG911 tells the user: lora_alpha * sqrt(r), so that alpha'/r == alpha/sqrt(r)."""
    return config["lora_alpha"] * math.sqrt(config["r"])


# -- the converter's side: everything converted in one run, per test module ----------------------


@dataclass
class Converted:
    """What llama.cpp made of one adapter."""

    kind: str  # the base: "llama" / "gpt2"
    conversion: llama.Conversion
    gguf: llama.GgufAdapter | None = None
    #: llama.cpp's update of each base tensor, or why its loader refuses that tensor.
    updates: dict[str, Any] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    #: Tensors of the GGUF llama.cpp's loader skips (norm vectors).
    skipped: list[str] = field(default_factory=list)
    #: PEFT's own update of each module (the oracle).
    peft: dict[str, Any] = field(default_factory=dict)

    @property
    def mismatched(self) -> list[str]:
        """Modules whose update on llama.cpp differs from PEFT's (missing, refused or different)."""
        return sorted(
            name for name, theirs in self.peft.items()
            if name in self.refused or name not in self.updates or not llama.same_update(self.updates[name], theirs)
        )

    @property
    def correct(self) -> bool:
        """Converted, loaded by llama.cpp, and applied exactly as PEFT applies it. A tensor the
        loader skips is a change it does not make (the norm test shows the saved norms differ)."""
        return self.conversion.converted and not self.refused and not self.mismatched and not self.skipped

    def ratio(self, name: str) -> float:
        """How strong llama.cpp's update of ``name`` is against PEFT's (Frobenius norms)."""
        return float(np.linalg.norm(self.updates[name]) / np.linalg.norm(self.peft[name]))


def _kind(adapter_dir: Path) -> str:
    """The tiny base an adapter was written on: GPT-2's modules are c_attn/c_proj/c_fc."""
    targets = pw.read_config(adapter_dir).get("target_modules")
    targets = [targets] if isinstance(targets, str) else targets or []
    return pw.GPT2 if any(t.startswith("c_") for t in targets) else pw.LLAMA


@pytest.fixture(scope="module")
def lab(tmp_path_factory, peft_corpus) -> dict[str, Path]:
    """Every adapter the tests convert: the whole peft_writers corpus, EXTRA_CASES, and config
    edits of real samples. (The conv_emb sample has no transformers base; it is given the Llama
    one, and the converter stops on its first DoRA tensor whatever the base.)"""
    root = tmp_path_factory.mktemp("llama_cpp_lab")
    adapters = {name: s.adapter_dir for name, s in peft_corpus.items()}
    for name in EXTRA_CASES:
        adapters[name] = build_extra(name, root / name)
    rslora = pw.read_config(peft_corpus["rslora"].adapter_dir)
    adapters["rslora_folded"] = edited(
        peft_corpus["rslora"].adapter_dir, root / "rslora_folded", lora_alpha=folded_alpha(rslora), use_rslora=False
    )
    r8 = pw.read_config(adapters["rslora_r8"])
    adapters["rslora_r8_folded"] = edited(
        adapters["rslora_r8"], root / "rslora_r8_folded", lora_alpha=folded_alpha(r8), use_rslora=False
    )
    pattern = peft_corpus["rank_alpha_pattern"].adapter_dir
    adapters["rank_pattern_only"] = edited(pattern, root / "rank_pattern_only", alpha_pattern={})
    plain = peft_corpus["plain_qv"].adapter_dir
    adapters["no_lora_alpha"] = edited(plain, root / "no_lora_alpha", lora_alpha=pw.DELETE)
    # PEFT clears a wrong fan_in_fan_out on Linear layers (with a warning); the converter never reads it.
    adapters["fan_in_fan_out_on_linear"] = edited(plain, root / "fan_in_fan_out_on_linear", fan_in_fan_out=True)
    adapters["rslora_rank_pattern"] = edited(pattern, root / "rslora_rank_pattern", alpha_pattern={}, use_rslora=True)
    adapters["alpha_pattern_same_alpha"] = edited(
        pattern, root / "alpha_pattern_same_alpha", alpha_pattern={"k_proj": 16}
    )
    return adapters


def _convert_all(adapters: dict[str, Path], root: Path, pin: llama.Pin) -> dict[str, Converted]:
    """Convert every adapter with the pinned converter (one process) and compare with PEFT."""
    bases = {kind: llama.write_base_dir(kind, root / kind) for kind in (pw.LLAMA, pw.GPT2)}
    kinds = {name: _kind(path) for name, path in adapters.items()}
    conversions = llama.convert([(path, bases[kinds[name]]) for name, path in adapters.items()], root / "gguf", pin)
    done = [c for c in conversions if c.converted]
    ggufs = iter(llama.read_gguf([c.gguf for c in done]))
    out = {}
    for (name, path), conversion in zip(adapters.items(), conversions):
        kind = kinds[name]
        result = Converted(kind, conversion)
        if conversion.converted:
            result.gguf = next(ggufs)
            base_ne = llama.base_ne(pw.make_base(kind), kind)
            result.updates, result.refused, result.skipped = llama.llama_cpp_load(result.gguf, base_ne)
            result.peft = llama.peft_updates(path, pw.BASES[kind], kind)
        out[name] = result
    return out


#: An mlx-vlm adapter, converted in the same run (the converter's process is the slow part).
MLX_VLM_SAMPLE = "mlx_vlm_lora"


@pytest.fixture(scope="module")
def converted(lab, vlm_corpus, tmp_path_factory) -> dict[str, Converted]:
    """What llama.cpp makes of every ``lab`` adapter (and of MLX_VLM_SAMPLE): one converter run."""
    adapters = {**lab, MLX_VLM_SAMPLE: vlm_corpus["lora"].adapter_dir}
    return _convert_all(adapters, tmp_path_factory.mktemp("llama_cpp_b11312"), llama.LATEST)


# -- the pin ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pin", [llama.LATEST, llama.B4295, llama.B3353], ids=lambda pin: pin.tag)
def test_each_pinned_sdist_vendors_the_build_it_is_named_for(pin):
    """llama-cpp-python 0.3.36 / 0.3.5 / 0.2.82 vendor llama.cpp 0c1e57098 (b11312) / 26a8406ba (b4295) /
    7fdb6f73e (b3353): each CHANGELOG names its commit."""
    assert llama.vendored_commit(pin).startswith(pin.commit)
    assert (llama.converter_dir(pin) / "convert_hf_to_gguf.py").is_file()  # the vendored tree was found


def test_the_latest_pin_is_the_profiles_latest():
    assert PROFILE.latest == llama.LATEST.tag == "b11312"
    assert runtime_venvs.installed_version(llama.converter_python(), "gguf") == "0.19.0"


def test_a_plain_adapter_converts_exactly_and_gets_no_finding(lab, converted):
    plain = converted["plain_qv"]
    assert plain.correct and plain.gguf.alpha == 16.0 and len(plain.peft) == 4
    assert verdict(lab["plain_qv"]) == Verdict("ok", [], [])


# -- AG911 rsLoRA -----------------------------------------------------------------------------------


def test_rslora_converts_with_alpha_over_r_and_is_an_error(lab, converted):
    """The converter writes lora_alpha (16) and llama.cpp divides by r (16): a quarter of PEFT's
    alpha/sqrt(r) update on every module."""
    rslora = converted["rslora"]
    assert rslora.conversion.converted and rslora.gguf.alpha == 16.0 and not rslora.refused
    assert rslora.mismatched == sorted(rslora.peft)
    assert all(rslora.ratio(name) == pytest.approx(0.25) for name in rslora.peft)
    found = verdict(lab["rslora"])
    assert (found.cell, found.codes) == ("fails", ["AG911"])
    assert "rsLoRA: llama.cpp conversion will use alpha/r; fold the √r factor into lora_alpha" in found.messages[0]
    assert "set lora_alpha to 64 (= 16 × √16) and use_rslora to false" in found.messages[0]


def test_rslora_folded_as_the_finding_says_converts_exactly_and_passes(lab, converted):
    """lora_alpha 16*sqrt(16) = 64 without rsLoRA: PEFT's update is unchanged, llama.cpp's now equals it."""
    folded = converted["rslora_folded"]
    assert folded.correct and folded.gguf.alpha == 64.0
    for name, update in converted["rslora"].peft.items():
        assert llama.same_update(folded.peft[name], update)  # PEFT itself runs the folded adapter the same
    assert verdict(lab["rslora_folded"]) == Verdict("ok", [], [])


def test_rslora_fold_with_an_irrational_root(lab, converted):
    """r=8: the finding's value 16*sqrt(8) = 45.254834 makes llama.cpp's update PEFT's (to float32)."""
    assert converted["rslora_r8"].mismatched and not converted["rslora_r8_folded"].mismatched
    assert converted["rslora_r8_folded"].gguf.alpha == pytest.approx(16 * math.sqrt(8), rel=1e-7)
    found = verdict(lab["rslora_r8"])
    assert found.codes == ["AG911"] and "set lora_alpha to 45.254834 (= 16 × √8)" in found.messages[0]
    assert verdict(lab["rslora_r8_folded"]).codes == []


def test_rslora_in_a_bin_file_is_judged_from_the_config(lab, converted):
    """The converter reads adapter_model.bin too; the lint reads no pickle, so the rank is the config's r."""
    assert not (lab["rslora_bin"] / pw.WEIGHTS_NAME).exists()
    rslora = converted["rslora_bin"]
    assert rslora.conversion.converted and all(rslora.ratio(name) == pytest.approx(0.25) for name in rslora.peft)
    found = verdict(lab["rslora_bin"])
    assert found.codes == ["AG911"] and "set lora_alpha to 64 (= 16 × √16)" in found.messages[0]


def test_rslora_with_several_ranks_has_no_single_alpha(lab, converted):
    """rank_pattern (r = 8, 4, 2) with rsLoRA: each module is off by its own sqrt(r)."""
    mixed = converted["rslora_rank_pattern"]
    assert mixed.conversion.converted and mixed.mismatched == sorted(mixed.peft)
    for name in mixed.peft:
        rank = mixed.gguf.tensors[name + ".lora_b"][0][0]
        assert mixed.ratio(name) == pytest.approx(1 / math.sqrt(rank))
    found = verdict(lab["rslora_rank_pattern"])
    assert found.codes == ["AG911"] and "ranks 2, 4, 8, so no single lora_alpha" in found.messages[0]


def test_rslora_at_rank_1_is_the_same_scale(lab, converted):
    """alpha/1 == alpha/sqrt(1): the converter's GGUF is exact and there is nothing to say."""
    assert converted["rslora_r1"].correct
    assert verdict(lab["rslora_r1"]) == Verdict("ok", [], [])


# -- AG912 alpha_pattern (and rank_pattern, which is honoured) ---------------------------------------


def test_rank_pattern_is_honoured_because_the_rank_comes_from_each_pair(lab, converted):
    """rank_pattern gives q_proj r=4 and layer 1's v_proj r=2; llama.cpp divides by each lora_b's ne[0]."""
    only = converted["rank_pattern_only"]
    ranks = {name: only.gguf.tensors[name + ".lora_b"][0][0] for name in only.peft}
    assert sorted(set(ranks.values())) == [2, 4, 8]
    assert only.correct
    assert verdict(lab["rank_pattern_only"]) == Verdict("ok", [], [])


def test_alpha_pattern_is_ignored_and_the_finding_names_the_modules(lab, converted):
    """alpha_pattern {"k_proj": 32} over lora_alpha 16: both k_proj modules run at half strength,
    the others exactly; the finding names exactly those modules."""
    pattern = converted["rank_alpha_pattern"]
    assert pattern.conversion.converted and pattern.gguf.alpha == 16.0
    assert pattern.mismatched == ["blk.0.attn_k.weight", "blk.1.attn_k.weight"]
    assert all(pattern.ratio(name) == pytest.approx(0.5) for name in pattern.mismatched)
    found = verdict(lab["rank_alpha_pattern"])
    assert (found.cell, found.codes) == ("fails", ["AG912"])
    message = found.messages[0]
    assert "`model.layers.0.self_attn.k_proj`, `model.layers.1.self_attn.k_proj`" in message
    assert "q_proj" not in message and "v_proj" not in message


def test_an_alpha_pattern_equal_to_lora_alpha_changes_nothing(lab, converted):
    assert converted["alpha_pattern_same_alpha"].correct
    assert verdict(lab["alpha_pattern_same_alpha"]) == Verdict("ok", [], [])


# -- AG913 whole-module weights, AG914 DoRA, AG915 biases: the converter stops -----------------------


def _stopped_at(converted: Converted, tensor: str) -> bool:
    c = converted.conversion
    return c.exit == 1 and c.gguf is None and f"Unexpected name '{tensor}': Not a lora_A or lora_B tensor" in c.errors


@pytest.mark.parametrize(
    "sample, tensor, code",
    [
        ("modules_to_save_lm_head", "base_model.model.lm_head.weight", "AG913"),
        ("modules_to_save_embed", "base_model.model.model.embed_tokens.weight", "AG913"),
        ("trainable_tokens", "base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta", "AG913"),
        ("dora", "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", "AG914"),
        ("custom_conv_emb_dora", "base_model.model.conv1d.lora_magnitude_vector", "AG914"),
        ("llama_lora_bias", "base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias", "AG915"),
        ("gpt2_bias_lora_only", "base_model.model.transformer.h.0.attn.c_attn.base_layer.bias", "AG915"),
        ("gpt2_bias_all", "base_model.model.transformer.h.0.attn.c_attn.base_layer.bias", "AG915"),
        ("gpt2_lora_bias", "base_model.model.transformer.h.0.attn.c_attn.lora_B.bias", "AG915"),
    ],
)
def test_tensors_the_converter_stops_on_are_errors(lab, converted, sample, tensor, code):
    assert _stopped_at(converted[sample], tensor)
    found = verdict(lab[sample])
    assert found.cell == "fails" and code in found.codes
    assert any(f"`{tensor}`" in m for m in found.messages)


def test_full_embeddings_are_reported_in_the_converters_words(lab, converted):
    errors = converted["modules_to_save_lm_head"].conversion.errors
    assert "Embeddings is present in the adapter. This can be due to new tokens added during fine tuning" in errors
    assert "Embeddings is present in the adapter" in verdict(lab["modules_to_save_lm_head"]).messages[0]


def test_a_config_without_lora_alpha_stops_the_converter(lab, converted):
    """PEFT runs it with its default alpha 8; the converter has no default."""
    conversion = converted["no_lora_alpha"].conversion
    assert not conversion.converted and conversion.exception == "KeyError: 'lora_alpha'"
    found = verdict(lab["no_lora_alpha"])
    assert (found.cell, found.codes) == ("fails", ["AG916"])


def test_the_full_embedding_peft_saves_for_an_embedding_lora_is_skipped(lab, converted):
    """embed_tokens in target_modules makes PEFT save `embed_tokens.base_layer.weight` (the whole base
    table); the converter skips it and converts the embedding LoRA pair, which llama.cpp applies as
    PEFT does (from b4446)."""
    from safetensors import safe_open

    with safe_open(str(lab["embedding"] / pw.WEIGHTS_NAME), "pt") as f:
        assert "base_model.model.model.embed_tokens.base_layer.weight" in f.keys()
    embedding = converted["embedding"]
    assert embedding.correct and "token_embd.weight" in embedding.peft
    assert verdict(lab["embedding"]) == Verdict("ok", [], [])


# -- b4295: before b4446, and AG919 before b3400, with the converters of those builds -------------------------

#: Samples whose outcome is the same at b4295 and b11312 (every rule but the b4446 ones).
SAME_AT_B4295 = (
    "plain_qv", "rslora", "rank_alpha_pattern", "no_lora_alpha", "dora", "llama_lora_bias",
    "modules_to_save_lm_head", "trainable_tokens", "gpt2_conv1d_fan_in_fan_out",
)
#: The samples run again through the b4295 converter.
B4295_SAMPLES = (*SAME_AT_B4295, "embedding", "modules_to_save_norm")


@pytest.fixture(scope="module")
def converted_b4295(lab, tmp_path_factory) -> dict[str, Converted]:
    adapters = {name: lab[name] for name in B4295_SAMPLES}
    return _convert_all(adapters, tmp_path_factory.mktemp("llama_cpp_b4295"), llama.B4295)


def _outcome(c: Converted) -> tuple:
    first = c.conversion.errors[0] if c.conversion.errors else c.conversion.exception
    ratios = [round(c.ratio(n), 6) for n in c.mismatched if n in c.updates]
    return c.conversion.converted, first, c.mismatched, sorted(c.refused), ratios


@pytest.mark.parametrize("sample", SAME_AT_B4295)
def test_b4295_converts_as_b11312_does_and_the_verdict_is_the_same(lab, converted, converted_b4295, sample):
    """The rules with the range >=3400, checked at a second build: the same refusal, or the same
    modules off by the same factor, and the same findings."""
    assert _outcome(converted_b4295[sample]) == _outcome(converted[sample])
    assert verdict(lab[sample], "b4295").codes == verdict(lab[sample]).codes


def test_before_b4446_embedding_lora_and_norms_stop_the_converter(lab, converted_b4295):
    """At b4295 `get_tensors` knows only `.lora_A.weight`/`.lora_B.weight` (`git log -S'lora_embedding_A'
    -- convert_lora_to_gguf.py` -> 4d2b3d88, #11131, first in b4446). b11312 converts both (tests above)."""
    assert _stopped_at(converted_b4295["embedding"], "base_model.model.model.embed_tokens.lora_embedding_A")
    found = verdict(lab["embedding"], "b4295")
    assert found.codes == ["AG913"] and "converted from b4446 on" in found.messages[0]
    norm = "base_model.model.model.layers.0.input_layernorm.weight"
    assert _stopped_at(converted_b4295["modules_to_save_norm"], norm)
    assert verdict(lab["modules_to_save_norm"], "b4295").codes == ["AG913"]
    assert verdict(lab["embedding"], "b4446").codes == []


def test_at_b4295_full_embeddings_get_the_same_hint(lab, converted_b4295):
    """"Embeddings is present in the adapter" was added in b3959 (c421ac07, #9948)."""
    assert "Embeddings is present in the adapter. This can be due to new tokens added during fine tuning" in (
        converted_b4295["modules_to_save_lm_head"].conversion.errors
    )
    assert "Embeddings is present in the adapter" in verdict(lab["modules_to_save_lm_head"], "b4295").messages[0]
    assert "Embeddings is present" not in verdict(lab["modules_to_save_lm_head"], "b3958").messages[0]


def test_there_is_no_converter_before_b3400(lab):
    """b3353's llama.cpp (llama-cpp-python 0.2.82) has no convert_lora_to_gguf.py; it was added by 97bdd26e
    (#8332, "Refactor lora adapter support"), whose first build tag is b3400 (`git tag --contains`)."""
    assert not (llama.converter_dir(llama.B3353) / "convert_lora_to_gguf.py").exists()
    found = verdict(lab["plain_qv"], "b3353")
    assert (found.cell, found.codes) == ("fails", ["AG919"])
    assert verdict(lab["plain_qv"], "b3400").codes == []


# -- AG917 norm vectors: converted, then ignored by llama.cpp ---------------------------------------------


def test_norm_weights_are_converted_but_ignored_at_load(lab, converted):
    """modules_to_save=["input_layernorm"]: the trained norms reach the GGUF (blk.N.attn_norm.weight),
    but llama.cpp's loader skips `*_norm.weight`, so the adapter runs with the base's norms."""
    from safetensors.numpy import load_file

    norms = converted["modules_to_save_norm"]
    assert norms.conversion.converted
    assert {"blk.0.attn_norm.weight", "blk.1.attn_norm.weight"} <= set(norms.gguf.tensors)
    assert norms.skipped == ["blk.0.attn_norm.weight", "blk.1.attn_norm.weight"]
    assert not any("norm" in name for name in norms.updates)  # what llama.cpp applies
    saved = load_file(str(lab["modules_to_save_norm"] / pw.WEIGHTS_NAME))
    base = pw.make_base(pw.LLAMA).model.layers[0].input_layernorm.weight.detach().numpy()
    assert not np.allclose(saved["base_model.model.model.layers.0.input_layernorm.weight"], base)
    found = verdict(lab["modules_to_save_norm"])
    assert (found.cell, found.codes) == ("fails", ["AG917"])
    # Before b4446 the converter did not keep norms: it stopped on them.
    assert verdict(lab["modules_to_save_norm"], "b4445").codes == ["AG913"]


# -- AG918 fan_in_fan_out (GPT-2's Conv1D) --------------------------------------------------------------


def test_conv1d_adapters_are_refused_or_transposed_by_llama_cpp(lab, converted):
    """The converter exits 0, but llama.cpp refuses the non-square c_attn/mlp.c_proj pairs
    ("has incorrect shape") and would apply the square attn.c_proj update transposed."""
    c_attn = converted["gpt2_conv1d_fan_in_fan_out"]
    assert c_attn.conversion.converted
    assert set(c_attn.refused) == {"blk.0.attn_qkv.weight", "blk.1.attn_qkv.weight"}
    c_proj = converted["gpt2_c_proj"]
    assert set(c_proj.refused) == {"blk.0.ffn_down.weight", "blk.1.ffn_down.weight"}
    square = c_proj.updates["blk.0.attn_output.weight"]
    peft = c_proj.peft["blk.0.attn_output.weight"]
    assert llama.same_update(square, peft.T) and not llama.same_update(square, peft)
    for sample in ("gpt2_conv1d_fan_in_fan_out", "gpt2_c_proj"):
        found = verdict(lab[sample])
        assert (found.cell, found.codes) == ("fails", ["AG918"])


# -- AG910 another format --------------------------------------------------------------------------------


def test_an_mlx_adapter_is_not_read_by_the_converter(vlm_corpus, converted):
    """mlx-vlm writes adapters.safetensors: the converter finds neither adapter_model.safetensors nor .bin."""
    conversion = converted[MLX_VLM_SAMPLE].conversion
    assert not conversion.converted and "adapter_model.bin" in (conversion.exception or "")
    found = verdict(vlm_corpus["lora"].adapter_dir)
    assert (found.cell, found.codes) == ("fails", ["AG910"])
    assert "convert it to PEFT's layout first" in found.messages[0]


# -- no false alarms --------------------------------------------------------------------------------------


def test_the_verdict_agrees_with_llama_cpp_on_every_adapter(lab, converted):
    """Every adapter converted here (the whole PEFT corpus, the extra cases and the edits):
    llama.cpp runs it exactly as PEFT does <=> adapter-guard has no llama.cpp finding.
    (bin_fallback's tensors are not read by the lint, and it is correct: no finding either.)"""
    correct = {name for name in lab if converted[name].correct}
    assert correct >= {
        "plain_qv", "regex_target", "layers_to_transform", "layers_pattern", "all_linear", "bin_fallback",
        "named_subfolder", "embedding", "rslora_folded", "rank_pattern_only", "alpha_pattern_same_alpha",
        "fan_in_fan_out_on_linear",
    }
    verdicts = {name: verdict(path) for name, path in lab.items()}
    assert {name for name, v in verdicts.items() if v.cell == "ok" and not v.codes} == correct
    assert {name for name, v in verdicts.items() if v.cell == "fails"} == set(lab) - correct


def test_every_mlx_adapter_gets_the_format_finding_only(written_adapters):
    """mlx-vlm and older mlx-lm adapters (the corpora's non-PEFT samples with a config): AG910 and
    nothing else; the PEFT ones are judged above."""
    checked = 0
    for name, (fmt, adapter_dir) in written_adapters.items():
        if fmt == "peft-lora" or not (adapter_dir / pw.CONFIG_NAME).is_file():
            continue
        found = verdict(adapter_dir)
        assert (found.cell, found.codes) == ("fails", ["AG910"]), name
        checked += 1
    assert checked >= 4
