"""PEFT LoRA adapters, checked against what the real PEFT writes and what its loader does.

Every sample is written by peft 0.21.2's ``save_pretrained`` (tests/peft_writers.py). A clean
sample gets no error or warning and ``--fix`` leaves it byte-identical. Each corruption is
loaded with ``PeftModel.from_pretrained`` on a fresh base, and the finding must say what
PEFT does: refuse it, warn about missing keys, or drop tensors without a word.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import peft_writers
import pytest

from adapter_guard.engine import run
from adapter_guard.settings import Settings

CLEAN = [n for n in peft_writers.CASES]


def lint_dir(adapter_dir: Path, **settings):
    results = run(Settings(paths=[adapter_dir], root=adapter_dir, **settings))
    return [r for r in results if r.path.endswith("adapter_config.json")]


def codes(results, severities=("error", "warning")) -> list[str]:
    return sorted({f.code for r in results for f in r.findings if f.severity in severities and not f.fixed})


def tree_bytes(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# -- clean samples: silence ------------------------------------------------------------


@pytest.mark.parametrize("name", CLEAN)
def test_a_real_peft_adapter_is_detected_as_peft_lora(peft_corpus, name):
    [result] = lint_dir(peft_corpus[name].adapter_dir)

    assert result.format == "peft-lora"


@pytest.mark.parametrize("name", [n for n in CLEAN if n != "bin_fallback"])
def test_a_real_peft_adapter_gets_no_error_or_warning(peft_corpus, name):
    assert codes(lint_dir(peft_corpus[name].adapter_dir)) == []


def test_a_pickle_only_peft_adapter_gets_only_the_pickle_warning(peft_corpus):
    assert codes(lint_dir(peft_corpus["bin_fallback"].adapter_dir)) == ["AG703"]


@pytest.mark.parametrize("name", CLEAN)
def test_fix_leaves_a_real_peft_adapter_byte_identical(peft_corpus, name, tmp_path):
    adapter_dir = Path(shutil.copytree(peft_corpus[name].adapter_dir, tmp_path / name))
    before = tree_bytes(adapter_dir)

    lint_dir(adapter_dir, fix=True, unsafe_fixes=True)

    assert tree_bytes(adapter_dir) == before


@pytest.mark.parametrize("name", ["plain_qv", "embedding", "modules_to_save_lm_head", "all_linear", "gpt2_conv1d_fan_in_fan_out"])
def test_a_real_peft_adapter_fits_its_own_base_config(peft_corpus, name, tmp_path):
    sample = peft_corpus[name]
    base = peft_writers.write_base_config(sample.base, tmp_path / "base").parent

    assert codes(lint_dir(sample.adapter_dir, base_model=base)) == []


# -- corruptions: the finding says what PEFT does --------------------------------------


def size_mismatch(outcome) -> bool:
    return outcome.error_type == "RuntimeError" and "size mismatch" in outcome.error


def missing_keys(outcome) -> bool:
    return outcome.loaded and bool(outcome.missing_keys)


def silently_dropped(outcome) -> bool:
    return outcome.loaded and bool(outcome.unexpected_keys) and not outcome.warnings


def changed_silently(outcome) -> bool:
    return outcome.silent and not outcome.reproduces_live()


def refused(outcome) -> bool:
    return not outcome.loaded


#: corruption -> (the error/warning codes adapter-guard reports, what PEFT does).
VERDICTS = {
    "r_edited_8_to_16": (["AG705"], size_mismatch),
    "rank_pattern_removed": (["AG706"], size_mismatch),
    "lora_B_transposed": (["AG705"], size_mismatch),
    "mixed_ranks_without_rank_pattern": (["AG706"], size_mismatch),
    "tensor_renamed": (["AG708", "AG715"], lambda o: missing_keys(o) and bool(o.unexpected_keys)),
    "target_modules_reduced": (["AG708"], silently_dropped),
    "extra_tensor_wrong_shape": (["AG708"], silently_dropped),
    "target_modules_extended": (["AG709"], missing_keys),
    "layers_to_transform_changed": (["AG708", "AG709"], lambda o: missing_keys(o) and bool(o.unexpected_keys)),
    "prefix_stripped": (["AG708"], missing_keys),
    "target_modules_bare_name_as_regex": (["AG708"], refused),
    "target_modules_match_nothing": (["AG708"], refused),
    "use_dora_true_to_false": (["AG710"], changed_silently),
    "use_dora_false_to_true": (["AG711"], missing_keys),
    "modules_to_save_without_tensor": (["AG713"], refused),
    "peft_type_missing": (["AG704"], refused),
    "peft_type_lower_case": (["AG704"], refused),
    "weights_without_tensors": (["AG702"], missing_keys),
    "weights_zero_bytes": (["AG702"], refused),
    "weights_absent": (["AG701"], refused),
    "target_modules_regex_subset": (["AG708"], silently_dropped),
    "mlx_lm_style_config": (["AG704"], refused),
    "r_zero": (["AG004"], refused),
    "bias_bogus": (["AG004"], refused),
    "task_type_bogus": (["AG004"], refused),
    # PEFT warns and the adapter still works: a warning, as PEFT's own.
    "rank_pattern_key_matches_nothing": (["AG707"], lambda o: o.warnings and o.reproduces_live()),
    # PEFT takes these without a word (or corrects them itself) and reproduces the trained output:
    # so adapter-guard says nothing.
    "unknown_config_key": ([], lambda o: o.reproduces_live()),
    "fan_in_fan_out_false_on_conv1d": ([], lambda o: o.reproduces_live()),
}


@pytest.fixture
def corrupted(peft_corpus, tmp_path):
    def make(corruption: str):
        sample = peft_corpus[peft_writers.CORRUPTIONS[corruption].sample]
        return sample, peft_writers.corrupted_copy(sample, corruption, tmp_path / corruption)

    return make


@pytest.mark.parametrize("corruption", VERDICTS)
def test_each_corruption_gets_the_finding_that_matches_what_peft_does(corrupted, corruption):
    expected, peft_does = VERDICTS[corruption]
    sample, adapter_dir = corrupted(corruption)

    assert codes(lint_dir(adapter_dir)) == expected
    assert peft_does(peft_writers.load_sample(sample, adapter_dir))


def test_a_resized_vocabulary_in_modules_to_save_is_an_error_with_the_base_config(corrupted, tmp_path):
    sample, adapter_dir = corrupted("modules_to_save_resized_vocab")
    base = peft_writers.write_base_config(sample.base, tmp_path / "base").parent

    assert codes(lint_dir(adapter_dir, base_model=base)) == ["AG714"]
    assert size_mismatch(peft_writers.load_sample(sample, adapter_dir))


def test_an_edited_lora_alpha_is_out_of_reach(corrupted):
    """Nothing on disk depends on lora_alpha: PEFT loads it silently with another scale, and
    adapter-guard cannot tell either. Stated here so the gap is not mistaken for coverage."""
    sample, adapter_dir = corrupted("lora_alpha_edited")

    assert codes(lint_dir(adapter_dir)) == []
    assert changed_silently(peft_writers.load_sample(sample, adapter_dir))


# -- safe fixes: PEFT's own keys, and PEFT then reproduces the trained output -------------


@pytest.mark.parametrize(
    ("corruption", "written"),
    [
        ("r_edited_8_to_16", {"r": 8}),
        ("use_dora_true_to_false", {"use_dora": True}),
        (
            "rank_pattern_removed",
            # The shortest unique dotted suffix: every PEFT release from 0.6 matches it (test_target_peft).
            {"rank_pattern": {
                r"layers\.0\.self_attn\.q_proj": 4,
                r"layers\.1\.self_attn\.q_proj": 4,
                r"layers\.1\.self_attn\.v_proj": 2,
            }},
        ),
    ],
)
def test_a_safe_fix_writes_only_peft_keys_and_peft_reproduces_the_trained_model(corrupted, corruption, written):
    sample, adapter_dir = corrupted(corruption)
    before = peft_writers.read_config(adapter_dir)

    assert codes(lint_dir(adapter_dir, fix=True)) == []

    after = peft_writers.read_config(adapter_dir)
    assert {k: v for k, v in after.items() if before.get(k) != v} == written
    assert set(after) == set(before)
    assert peft_writers.load_sample(sample, adapter_dir).reproduces_live()


def test_a_rank_pattern_fix_for_a_cut_module_loads_without_a_word(corrupted):
    sample, adapter_dir = corrupted("mixed_ranks_without_rank_pattern")

    lint_dir(adapter_dir, fix=True)

    assert peft_writers.read_config(adapter_dir)["rank_pattern"] == {r"layers\.0\.self_attn\.q_proj": 4}
    outcome = peft_writers.load_sample(sample, adapter_dir)
    assert outcome.silent and not outcome.unexpected_keys


def test_a_module_adapted_through_target_parameters_is_not_called_dropped():
    from adapter_guard.formats.peft import targeted

    config = {"target_modules": ["q_proj"], "target_parameters": ["mlp.experts.gate_up_proj"]}

    assert targeted("model.layers.0.mlp.experts", config)
    assert targeted("model.layers.0.self_attn.q_proj", config)
    assert not targeted("model.layers.0.self_attn.k_proj", config)


# -- PEFT's matching, as the reference records it from peft 0.21.2 runs (§1.5) -----------


def test_the_first_rank_pattern_key_in_dict_order_wins():
    from adapter_guard.formats.peft import pattern_key

    wide_first = {"q_proj": 4, "layers.0.self_attn.q_proj": 2}
    narrow_first = {"layers.0.self_attn.q_proj": 2, "q_proj": 4}

    assert pattern_key(wide_first, "model.layers.0.self_attn.q_proj") == "q_proj"
    assert pattern_key(narrow_first, "model.layers.0.self_attn.q_proj") == "layers.0.self_attn.q_proj"
    assert pattern_key(narrow_first, "model.layers.1.self_attn.q_proj") == "q_proj"


def test_a_rank_pattern_key_matches_from_a_dot_boundary_only():
    from adapter_guard.formats.peft import pattern_key

    assert pattern_key({"proj": 2}, "model.layers.0.self_attn.q_proj") is None
    assert pattern_key({"q_proj|v_proj": 2}, "model.layers.0.self_attn.v_proj") == "q_proj|v_proj"
    assert pattern_key({"^model.layers.1.self_attn.v_proj": 2}, "model.layers.1.self_attn.v_proj") is not None


@pytest.mark.parametrize(
    ("targets", "name", "adapted"),
    [
        (["proj"], "model.layers.0.self_attn.q_proj", False),
        (["self_attn.q_proj"], "model.layers.0.self_attn.q_proj", True),
        (["model.layers.0.self_attn.q_proj"], "model.layers.0.self_attn.q_proj", True),
        ("q_proj", "model.layers.0.self_attn.q_proj", False),
        (".*q_proj", "model.layers.0.self_attn.q_proj", True),
    ],
)
def test_target_modules_match_exactly_or_at_a_dot_suffix_and_a_string_is_a_fullmatch(targets, name, adapted):
    from adapter_guard.formats.peft import targeted

    assert targeted(name, {"target_modules": targets}) is adapted


def test_an_exact_full_name_bypasses_layers_to_transform():
    from adapter_guard.formats.peft import targeted

    config = {"target_modules": ["model.layers.0.self_attn.q_proj", "v_proj"], "layers_to_transform": [1]}

    assert targeted("model.layers.0.self_attn.q_proj", config)
    assert targeted("model.layers.1.self_attn.v_proj", config)
    assert not targeted("model.layers.0.self_attn.v_proj", config)


def test_modules_to_save_is_never_adapted_even_when_targeted():
    from adapter_guard.formats.peft import targeted

    assert not targeted("lm_head", {"target_modules": ["lm_head"], "modules_to_save": ["lm_head"]})


def test_an_order_dependent_rank_pattern_that_save_pretrained_sorted_is_a_rank_mismatch(tmp_path):
    """save_pretrained sorts rank_pattern's keys, so "first match wins" picks another rank on reload."""
    sample = peft_writers.build_sample("rank_pattern_order_sensitive", tmp_path / "adapter")

    [result] = lint_dir(sample.adapter_dir)

    assert codes([result]) == ["AG705"]
    assert "rank_pattern['layers.0.self_attn.q_proj'] says 2" in result.findings[0].message
    assert size_mismatch(peft_writers.load_sample(sample))


def test_every_written_adapter_is_detected_as_the_format_its_writer_wrote(written_adapters):
    detected = {}
    for name, (_, adapter_dir) in written_adapters.items():
        results = run(Settings(paths=[adapter_dir], root=adapter_dir))
        detected[name] = [r.format for r in results]

    assert detected == {name: [fmt] for name, (fmt, _) in written_adapters.items()}


def test_a_generic_target_list_entry_for_another_architecture_is_not_a_finding(corrupted, peft_corpus, tmp_path):
    """PEFT says nothing about an entry that matches nothing while another entry matches (reference §1.5)."""
    sample = peft_corpus["plain_qv"]
    adapter_dir = Path(shutil.copytree(sample.adapter_dir, tmp_path / "generic"))
    peft_writers.edit_config(target_modules=["q_proj", "v_proj", "query_key_value", "c_attn"])(adapter_dir)

    assert codes(lint_dir(adapter_dir)) == []
    outcome = peft_writers.load_sample(sample, adapter_dir)
    assert outcome.silent and outcome.reproduces_live()


# -- the config's regexes: what PEFT does with one that does not compile ------------------


@pytest.mark.parametrize(
    "change",
    [
        {"target_modules": r".*\.(q_proj|v_proj"},
        {"rank_pattern": {"q_proj[": 4}},
        {"exclude_modules": "(k_proj"},
    ],
    ids=["target_modules", "rank_pattern", "exclude_modules"],
)
def test_a_pattern_that_does_not_compile_is_ag716_and_peft_refuses_it(peft_corpus, tmp_path, change):
    sample = peft_corpus["plain_qv"]
    adapter_dir = Path(shutil.copytree(sample.adapter_dir, tmp_path / "adapter"))
    peft_writers.edit_config(**change)(adapter_dir)

    assert codes(lint_dir(adapter_dir)) == ["AG716"]
    outcome = peft_writers.load_sample(sample, adapter_dir)
    assert outcome.error_type == "PatternError" or outcome.error_type == "error"  # re.error (PatternError from 3.13)


@pytest.mark.parametrize("name", ["regex_target", "rank_alpha_pattern", "layers_pattern"])
def test_real_peft_patterns_match_well_within_the_budget(peft_corpus, name):
    import time

    started = time.monotonic()
    results = lint_dir(peft_corpus[name].adapter_dir)

    assert codes(results, severities=("error", "warning", "info")) == []
    assert time.monotonic() - started < 1


# -- grouping tensors into modules: the shortcut against the definition ----------------------------


def _split_by_definition(shapes):
    """Each name after PEFT's prefix, tried against every factor leaf as a suffix after a dot."""
    from adapter_guard.formats.peft import _FACTOR_LEAVES, _OTHER_PEFT_LEAVES, PREFIX

    modules, plain, strays = {}, {}, []
    for key, shape in shapes.items():
        if not key.startswith(PREFIX):
            (strays.append(key) if ".lora_" in key else plain.__setitem__(key, shape))
            continue
        name = key[len(PREFIX):]
        for leaf, (factor, embedding) in _FACTOR_LEAVES.items():
            if name.endswith("." + leaf):
                module = modules.setdefault(name[: -len(leaf) - 1], {"a": None, "b": None, "magnitude": None, "embedding": False})
                module[factor] = shape
                module["embedding"] = module["embedding"] or embedding
                break
        else:
            if name.endswith(".lora_magnitude_vector"):
                empty = {"a": None, "b": None, "magnitude": None, "embedding": False}
                modules.setdefault(name[: -len(".lora_magnitude_vector")], empty)["magnitude"] = shape
            elif name.endswith(_OTHER_PEFT_LEAVES):
                continue
            elif ".lora_" in name:
                strays.append(key)
            else:
                plain[name] = shape
    return modules, plain, strays


from hypothesis import given, settings as hypothesis_settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PARTS = st.sampled_from(["lora_A", "lora_B", "weight", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector",
                          "bias", "base_layer", "q_proj", "layers", "0", "", "lora_x"])


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(_PARTS, min_size=1, max_size=5)), max_size=10))
def test_tensors_are_grouped_into_modules_as_the_leaf_suffixes_define(keys):
    from adapter_guard.formats.peft import PREFIX, split_tensors

    shapes = {(PREFIX if prefixed else "") + ".".join(parts): (i + 1, 2) for i, (prefixed, parts) in enumerate(keys)}
    got = split_tensors(shapes)
    modules, plain, strays = _split_by_definition(shapes)
    assert {n: {"a": m.a, "b": m.b, "magnitude": m.magnitude, "embedding": m.embedding}
            for n, m in got.modules.items()} == modules
    assert list(got.modules) == list(modules) and got.plain == plain and got.strays == strays


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["q_proj", "self_attn.q_proj", "layers.0.self_attn.q_proj", "v_proj", "proj", "", ".", 3]),
             max_size=4),
    st.lists(_PARTS, min_size=1, max_size=5).map(".".join),
    st.sampled_from([None, [], [0], 0, [1, 2], {}]),
)
def test_a_target_list_adapts_exactly_the_modules_its_entries_match(targets, name, layers):
    """The list case of ``targeted`` is any entry matching (``_entry_matches``), with or without a layer filter."""
    from adapter_guard.formats.peft import _entry_matches, targeted

    config = {"target_modules": targets, "layers_to_transform": layers}
    expected = any(isinstance(e, str) and _entry_matches(e, name, config) for e in targets)
    assert targeted(name, config) is expected
