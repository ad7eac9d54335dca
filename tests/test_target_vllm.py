"""The vllm target (adapter_guard/targets/vllm.py), on adapters written by PEFT's save_pretrained.

At vLLM 0.33.0 (the profile's ``latest``) the verdicts are checked against vLLM
itself: its ``PEFTHelper``/``LoRAConfig`` config check and its tensor-name parser,
installed on CPU (tests/target_vllm_oracle.py). Older releases need a GPU build and
old dependencies, so their rules are tested on the same real-writer files, and each
test's docstring names the vLLM source lines (file, tag, lines) that make the verdict.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import peft_writers
import target_vllm_oracle as oracle
from adapter_guard import engine
from adapter_guard.registry import RULES
from adapter_guard.settings import Settings
from adapter_guard.targets import parse_target


def target_findings(adapter_dir: Path, spec: str) -> list:
    """The vllm target's findings (AG90x) for one adapter folder, through the engine."""
    settings = Settings(paths=[adapter_dir], targets=[parse_target(spec)], lfs_headers=False, plans_fixes=False)
    result = engine.process(adapter_dir / "adapter_config.json", settings)
    return [f for f in result.findings if f.code.startswith("AG90")]


def codes(adapter_dir: Path, spec: str) -> set[str]:
    return {f.code for f in target_findings(adapter_dir, spec)}


def fails(adapter_dir: Path, spec: str) -> bool:
    """Whether the target verdict is "refused": an error (warnings and infos never fail)."""
    return any(RULES[f.code].severity == "error" for f in target_findings(adapter_dir, spec))


@pytest.fixture(scope="module")
def extra(tmp_path_factory) -> dict[str, Path]:
    """The samples in ``oracle.EXTRA_CASES``, written by save_pretrained."""
    root = tmp_path_factory.mktemp("vllm_extra")
    return {name: oracle.build(config, root / name) for name, config in oracle.EXTRA_CASES.items()}


def adapter(peft_corpus, name: str) -> Path:
    return peft_corpus[name].adapter_dir


def edited(peft_corpus, name: str, dest: Path, **changes) -> Path:
    """A copy of sample ``name`` in ``dest`` with config keys set (``peft_writers.DELETE`` removes one)."""
    copy = dest
    shutil.copytree(adapter(peft_corpus, name), copy)
    peft_writers.edit_config(**changes)(copy)
    return copy


@pytest.fixture(scope="module")
def edits(peft_corpus, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vllm_edits")
    return {
        "target_modules_missing": edited(
            peft_corpus, "plain_qv", root / "no_target_modules", target_modules=peft_writers.DELETE
        ),
        "alora": edited(peft_corpus, "plain_qv", root / "alora", alora_invocation_tokens=[5, 6]),
        "resized_lm_head": peft_writers.corrupted_copy(
            peft_corpus["modules_to_save_lm_head"], "modules_to_save_resized_vocab", root / "resized"
        ),
    }


# -- vLLM 0.33.0 itself -------------------------------------------------------------------


@pytest.fixture(scope="module")
def vllm_verdicts(peft_corpus, extra, edits) -> dict[str, dict]:
    """vLLM 0.33.0's verdict on every PEFT sample, at max_lora_rank 512 (any rank a sample has fits)
    and, for the rank cases, at the given ranks. One process for all."""
    jobs = {f"corpus/{name}": (s.adapter_dir, 512) for name, s in peft_corpus.items()}
    jobs.update({f"extra/{name}": (path, 512) for name, path in extra.items()})
    jobs.update({f"edit/{name}": (path, 512) for name, path in edits.items()})
    jobs["rank_32@16"] = (extra["rank_32"], 16)
    jobs["rank_32@32"] = (extra["rank_32"], 32)
    jobs["rank_pattern_64@32"] = (extra["rank_pattern_64"], 32)
    jobs["rank_pattern_64@64"] = (extra["rank_pattern_64"], 64)
    return oracle.run_oracle(jobs)


@pytest.mark.parametrize("release", [oracle.VLLM, oracle.VLLM_0_31])
def test_oracle_runs_the_pinned_vllm(release):
    """The verdicts below come from the pinned vLLM itself, not from whatever is installed."""
    import runtime_venvs

    assert runtime_venvs.installed_version(oracle.vllm_python(release), "vllm") == release.split("==")[1]


def test_every_peft_sample_agrees_with_vllm_0_33(peft_corpus, vllm_verdicts):
    """No false alarm, no miss: over every sample PEFT's save_pretrained writes, adapter-guard at
    vllm:max_lora_rank=512 fails exactly the ones vLLM 0.33.0 refuses (PEFTHelper.validate_legal,
    vllm/lora/peft_helper.py v0.33.0 L188-202, and parse_fine_tuned_lora_name, vllm/lora/utils.py
    v0.33.0 L180-233). The samples vLLM loads get no error and no warning."""
    refused_by_vllm = {n for n in peft_corpus if oracle.refused(vllm_verdicts[f"corpus/{n}"])}
    refused_by_us = {n for n, s in peft_corpus.items() if fails(s.adapter_dir, "vllm:max_lora_rank=512")}
    assert refused_by_us == refused_by_vllm
    # The corpus holds both kinds, so the comparison means something.
    assert {"plain_qv", "rslora", "embedding", "bin_fallback"} <= set(peft_corpus) - refused_by_vllm
    assert {"dora", "gpt2_lora_bias", "modules_to_save_lm_head", "trainable_tokens"} <= refused_by_vllm
    for name in set(peft_corpus) - refused_by_vllm:
        assert target_findings(adapter(peft_corpus, name), "vllm:max_lora_rank=512") == [], name


def test_every_working_sample_is_clean_at_its_own_rank(peft_corpus, vllm_verdicts):
    """The no-false-alarm bar with the tightest flag: each sample vLLM 0.33.0 loads, checked at
    vllm:max_lora_rank=<its r, rounded up to a value --max-lora-rank accepts> (vllm/config/lora.py
    v0.33.0 L27), gets nothing at all from the target."""
    import json

    for name, sample in peft_corpus.items():
        if oracle.refused(vllm_verdicts[f"corpus/{name}"]):
            continue
        config = json.loads((sample.adapter_dir / "adapter_config.json").read_text())
        ranks = [config["r"], *config.get("rank_pattern", {}).values()]
        flag = min(v for v in (1, 8, 16, 32, 64, 128, 256, 320, 512) if v >= max(ranks))
        assert target_findings(sample.adapter_dir, f"vllm:max_lora_rank={flag}") == [], name


@pytest.mark.parametrize(
    "key, spec, code",
    [
        ("extra/rank_300", "vllm:max_lora_rank=512", None),
        ("extra/rank_520", "vllm", "AG901"),
        ("extra/pissa", "vllm:max_lora_rank=512", "AG909"),
        ("extra/llama_bias_all", "vllm", "AG904"),
        ("extra/pattern_same_scale", "vllm", None),
        ("edit/target_modules_missing", "vllm", "AG909"),
        ("edit/alora", "vllm", "AG909"),
        ("edit/resized_lm_head", "vllm", "AG905"),
    ],
)
def test_extra_samples_agree_with_vllm_0_33(extra, edits, vllm_verdicts, key, spec, code):
    """Samples the corpus lacks, with vLLM 0.33.0's own verdict at max_lora_rank 512:
    rank 300 loads; rank 520 exceeds every value LoRAConfig accepts (vllm/config/lora.py v0.33.0 L27);
    a PiSSA init, aLoRA and a missing target_modules are refused by PEFTHelper (peft_helper.py v0.33.0
    L53-101, L155-173); bias="all" is refused even with no bias tensor (L199-200); modules_to_save
    with a resized lm_head is refused (L56-64)."""
    group, name = key.split("/")
    path = extra[name] if group == "extra" else edits[name]
    vllm_refused = oracle.refused(vllm_verdicts[key])
    assert vllm_refused == (code is not None)
    if code is None:
        assert not fails(path, spec)
    else:
        assert code in codes(path, spec) and fails(path, spec)


def test_rank_above_max_lora_rank_is_an_error_with_the_flag_to_pass(extra, vllm_verdicts):
    """r=32 at max_lora_rank 16: vLLM 0.33.0 raises "LoRA rank 32 is greater than max_lora_rank 16."
    (vllm/lora/peft_helper.py v0.33.0 L193-197); at 32 it loads."""
    assert "LoRA rank 32 is greater than max_lora_rank 16" in vllm_verdicts["rank_32@16"]["config_error"]
    assert not oracle.refused(vllm_verdicts["rank_32@32"])
    [finding] = target_findings(extra["rank_32"], "vllm:max_lora_rank=16")
    assert finding.code == "AG901"
    assert "r=32 exceeds vLLM's max_lora_rank 16; serve with --max-lora-rank 32" in finding.message
    assert target_findings(extra["rank_32"], "vllm:max_lora_rank=32") == []


def test_rank_pattern_rank_counts_against_max_lora_rank(extra, vllm_verdicts):
    """vLLM 0.32+ compares max([r, *rank_pattern.values()]) (vllm/lora/peft_helper.py v0.33.0 L193):
    a rank_pattern rank of 64 is refused at max_lora_rank 32 and loads at 64."""
    assert oracle.refused(vllm_verdicts["rank_pattern_64@32"])
    assert not oracle.refused(vllm_verdicts["rank_pattern_64@64"])
    assert codes(extra["rank_pattern_64"], "vllm:max_lora_rank=32") == {"AG901"}
    assert codes(extra["rank_pattern_64"], "vllm:max_lora_rank=64") == set()


def test_without_max_lora_rank_a_rank_above_the_default_is_only_info(extra, vllm_verdicts):
    """vLLM's default max_lora_rank is 16 (vllm/config/lora.py v0.33.0 L34): served without the flag,
    r=32 is refused (the oracle, at 16); with --max-lora-rank 32 it loads. The lint cannot see the
    serve command, so without the option it says so as INFO (AG902), which never fails a run."""
    [finding] = target_findings(extra["rank_32"], "vllm")
    assert finding.code == "AG902" and RULES["AG902"].severity == "info"
    assert "--max-lora-rank 32" in finding.message and "vllm:max_lora_rank=32" in finding.message
    assert not fails(extra["rank_32"], "vllm")


def test_wrong_format_mlx_adapters_are_refused(written_adapters):
    """vLLM reads adapter_config.json through PEFTHelper.from_dict (r, lora_alpha, target_modules
    required; vllm/lora/peft_helper.py v0.33.0 L155-173) and only adapter_model.safetensors/.bin/.pt
    (vllm/lora/lora_model.py v0.33.0 L239-316): every MLX sample gets AG900, at every version."""
    mlx = {k: (fmt, path) for k, (fmt, path) in written_adapters.items() if not k.startswith("peft/")}
    with_config = {k: v for k, v in mlx.items() if (v[1] / "adapter_config.json").exists()}
    # A config-less adapters.npz is linted as lone weights, where the engine runs no target.
    assert {fmt for k, (fmt, _) in mlx.items() if k not in with_config} <= {"adapters-npz"}
    assert len(with_config) >= 5
    for key, (fmt, path) in with_config.items():
        for spec in ("vllm", "vllm@0.6.0"):
            found = target_findings(path, spec)
            assert [f.code for f in found] == ["AG900"], key
            assert "convert it to PEFT" in found[0].message


def test_stock_mlx_lm_trainer_output_is_the_wrong_format(trainer_corpus):
    """Every run of the stock ``mlx_lm lora`` trainer (adapters.safetensors, lora_parameters) gets
    AG900 and nothing else: vLLM reads neither its config nor its weights file (as above)."""
    assert trainer_corpus
    for name, trained in trainer_corpus.items():
        assert [f.code for f in target_findings(trained.adapter_dir, "vllm")] == ["AG900"], name


def test_mlx_config_is_refused_by_vllm_0_33_too(written_adapters):
    """The wrong-format verdict is vLLM's: PEFTHelper raises "Missing required configuration fields"."""
    fmt, path = next(v for k, v in written_adapters.items() if k.startswith("vlm/"))
    [verdict] = oracle.run_oracle({"mlx": (path, 512)}).values()
    assert "Missing required configuration fields" in verdict["config_error"]


# -- older releases, from their source ----------------------------------------------------


def test_largest_max_lora_rank_grew_from_256_to_512_in_0_8(extra):
    """possible_max_ranks is (8, ..., 256) in vllm/config.py v0.7.3 L2184 and (8, ..., 256, 320, 512)
    in v0.8.0 L2326: r=300 can be served from 0.8.0 (info only), never before (error)."""
    assert codes(extra["rank_300"], "vllm@0.7.3") == {"AG901"}
    assert codes(extra["rank_300"], "vllm@0.8.0") == {"AG902"}


def test_patterns_ignored_before_0_32_give_the_wrong_scale(peft_corpus, extra):
    """vLLM before 0.32 computes one scale lora_alpha / r in PEFTHelper.__post_init__
    (vllm/lora/peft_helper.py v0.31.0 L58-65) and reads no rank_pattern/alpha_pattern; 0.32.0 added
    get_rank_and_scaling (v0.32.0 L131). The PEFT sample's q_proj (rank 4, scale 4.0) and k_proj
    (alpha 32, scale 4.0) differ from 16/8 = 2.0; patterns that keep every scale equal are harmless."""
    assert codes(adapter(peft_corpus, "rank_alpha_pattern"), "vllm@0.31.0") == {"AG907"}
    assert codes(adapter(peft_corpus, "rank_alpha_pattern"), "vllm@0.32.0") == set()
    assert codes(extra["pattern_same_scale"], "vllm@0.31.0") == set()


@pytest.fixture(scope="module")
def vllm_0_31_verdicts(peft_corpus, extra) -> dict[str, dict]:
    jobs = {name: (adapter(peft_corpus, name), 16) for name in ("plain_qv", "rank_alpha_pattern", "gpt2_lora_bias")}
    jobs["pattern_same_scale"] = (extra["pattern_same_scale"], 16)
    return oracle.run_oracle(jobs, oracle.VLLM_0_31)


def peft_scales(adapter_dir: Path, base: str) -> dict[str, float]:
    """Each adapted module's scaling as PEFT itself builds it (``PeftModel.from_pretrained``)."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(peft_writers.make_base(base), str(adapter_dir))
    return {name: module.scaling["default"] for name, module in model.named_modules()
            if isinstance(getattr(module, "scaling", None), dict) and "default" in module.scaling}


@pytest.mark.parametrize("name", ["rank_alpha_pattern", "pattern_same_scale", "plain_qv"])
def test_vllm_0_31_scale_against_peft(peft_corpus, extra, vllm_0_31_verdicts, name):
    """vLLM 0.31.0 itself: PEFTHelper has one scale, lora_alpha / r, and no per-module one
    (get_rank_and_scaling arrives in v0.32.0, vllm/lora/peft_helper.py L131; LoRALayerWeights.from_config
    takes peft_helper.vllm_lora_scaling_factor, vllm/lora/lora_weights.py v0.31.0 L58-70). PEFT's own
    scales per module: AG907 at vllm@0.31.0 exactly when some module's scale differs."""
    verdict = vllm_0_31_verdicts[name]
    assert verdict["config_error"] is None and verdict["per_module_scale"] is False
    path = extra[name] if name in extra else adapter(peft_corpus, name)
    differs = any(abs(scale - verdict["scale"]) > 1e-9 for scale in peft_scales(path, "llama").values())
    assert differs == (name == "rank_alpha_pattern")
    assert ("AG907" in codes(path, "vllm@0.31.0")) == differs


def test_vllm_0_31_reads_lora_bias_as_the_factor(peft_corpus, vllm_0_31_verdicts):
    """vLLM 0.31.0's PEFTHelper has no lora_bias check, and its parse_fine_tuned_lora_name
    (vllm/lora/utils.py v0.31.0 L207-209) returns `lora_B.bias` as the module's lora_B, the same as
    `lora_B.weight`: one overwrites the other. AG904 calls it an error at 0.31."""
    verdict = vllm_0_31_verdicts["gpt2_lora_bias"]
    assert verdict["config_error"] is None and verdict["tensor_errors"] == []
    biases = {k: v for k, v in verdict["parsed"].items() if k.endswith("lora_B.bias")}
    assert biases
    for name, parsed in biases.items():
        assert parsed == verdict["parsed"][name.replace(".bias", ".weight")]
    [finding] = target_findings(adapter(peft_corpus, "gpt2_lora_bias"), "vllm@0.31.0")
    assert finding.code == "AG904" and "0.31" in finding.message


def test_rslora_scale_per_version(peft_corpus):
    """vllm/lora/models.py v0.6.4 L277-278 reads only r and lora_alpha (scale alpha/r, lora.py L33):
    wrong scale; vllm/lora/peft_helper.py v0.6.6 L31 refuses RSLoRA; from v0.7.0 (peft_helper.py
    L52-57) the scale is alpha/sqrt(r)."""
    rslora = adapter(peft_corpus, "rslora")
    assert codes(rslora, "vllm@0.6.4") == {"AG908"}
    assert "wrong scale" in target_findings(rslora, "vllm@0.6.4")[0].message
    assert codes(rslora, "vllm@0.6.5") == {"AG908"}
    assert codes(rslora, "vllm@0.7.0") == set()


def test_bias_per_version(peft_corpus, extra):
    """lora_B.bias: refused by the parser in vllm/lora/utils.py v0.6.3 L94-114; needs
    --enable-lora-bias in 0.6.4-0.11.0 (vllm/lora/models.py v0.11.0 L424-433); refused from 0.11.1
    (peft_helper.py validate_legal) and as lora_bias from 0.32.0. bias="all" with no bias tensor is
    read by no config check before 0.7.0 (peft_helper.py v0.7.0 L109 adds it)."""
    lora_bias = adapter(peft_corpus, "gpt2_lora_bias")
    for spec in ("vllm@0.6.3", "vllm@0.11.0", "vllm@0.31.0", "vllm@0.33.0"):
        assert codes(lora_bias, spec) == {"AG904"}, spec
    assert "--enable-lora-bias" in target_findings(lora_bias, "vllm@0.11.0")[0].message
    assert codes(extra["llama_bias_all"], "vllm@0.6.6") == set()
    assert codes(extra["llama_bias_all"], "vllm@0.7.0") == {"AG904"}
    assert codes(adapter(peft_corpus, "plain_qv"), "vllm@0.11.0") == set()


def test_dora_refused_at_every_version(peft_corpus):
    """Before 0.6.5 the parser refuses lora_magnitude_vector (vllm/lora/utils.py v0.6.4 L94-117);
    from 0.6.5 PEFTHelper refuses use_dora (peft_helper.py v0.33.0 L66-67)."""
    for spec in ("vllm@0.6.4", "vllm@0.6.5", "vllm"):
        assert codes(adapter(peft_corpus, "dora"), spec) == {"AG903"}, spec


def test_modules_to_save_refused_at_every_version(peft_corpus):
    """lm_head.weight is no LoRA leaf for the parser before 0.6.5 (vllm/lora/utils.py v0.6.4 L94-117);
    PEFTHelper refuses modules_to_save from 0.6.5 (peft_helper.py v0.6.5 L28-29) and accepts only
    classifier/score from 0.31.0 (v0.33.0 L56-64). One finding, not one per rule."""
    for spec in ("vllm@0.6.4", "vllm@0.20.0", "vllm"):
        assert codes(adapter(peft_corpus, "modules_to_save_lm_head"), spec) == {"AG905"}, spec


def test_base_embedding_weight_refused_before_0_18(peft_corpus):
    """PEFT saves embed_tokens.base_layer.weight beside an embedding LoRA. vLLM 0.17 hands it to
    parse_fine_tuned_lora_name, which raises; is_base_embedding_weights (vllm/lora/utils.py v0.18.0
    L196-202, called in lora_model.py L89) skips it from 0.18.0."""
    embedding = adapter(peft_corpus, "embedding")
    assert codes(embedding, "vllm@0.17.1") == {"AG906"}
    assert "0.18" in target_findings(embedding, "vllm@0.17.1")[0].message
    assert codes(embedding, "vllm@0.18.0") == set()


def test_trainable_tokens_refused_at_every_version(peft_corpus):
    """token_adapter.trainable_tokens_delta is no leaf parse_fine_tuned_lora_name knows, at any tag
    (vllm/lora/utils.py v0.6.4 L94-117 .. v0.33.0 L180-233)."""
    for spec in ("vllm@0.6.0", "vllm@0.18.0", "vllm"):
        assert codes(adapter(peft_corpus, "trainable_tokens"), spec) == {"AG906"}, spec


def test_unsupported_features_refused_only_from_0_32(extra):
    """PEFTHelper._validate_features refuses PiSSA-style inits from 0.32.0 (peft_helper.py v0.32.0
    L53-87); v0.31.0 has no such check."""
    assert codes(extra["pissa"], "vllm@0.32.0") == {"AG909"}
    assert codes(extra["pissa"], "vllm@0.31.0") == set()


def test_target_label_carries_the_option(extra):
    """The finding names the target as the user gave it, option included."""
    [finding] = target_findings(extra["rank_32"], "vllm@0.20:max_lora_rank=16")
    assert finding.extra["target"] == "vllm@0.20:max_lora_rank=16"
    assert finding.message.startswith("vLLM 0.20: ")


@pytest.mark.parametrize(
    "changes",
    [
        {"r": "8", "lora_alpha": None, "rank_pattern": [4], "alpha_pattern": "x", "use_rslora": True},
        {"r": 0, "rank_pattern": {"q_proj": "4", "(": 2}, "alpha_pattern": {"v_proj": float("inf")}},
        {"modules_to_save": "lm_head", "bias": 3, "lora_bias": "yes", "use_dora": "true"},
        {"init_lora_weights": 7, "layer_replication": {"a": 1}, "target_modules": None},
        {"r": -4, "lora_alpha": "16", "rank_pattern": {"q_proj": 999999}, "use_rslora": 1},
    ],
)
def test_odd_config_values_never_raise(peft_corpus, tmp_path, changes):
    """Values of the wrong type reach every check at every boundary version without a traceback."""
    path = edited(peft_corpus, "plain_qv", tmp_path / "odd", **changes)
    for spec in ("vllm@0.6.3", "vllm@0.6.5", "vllm@0.7", "vllm@0.11.1", "vllm@0.31", "vllm:max_lora_rank=8"):
        target_findings(path, spec)
