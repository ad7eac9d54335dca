"""The PEFT target (``--target peft[@VERSION]``), judged by PEFT itself.

Every adapter here is real ``save_pretrained`` output (tests/peft_writers.py, plus
three samples in tests/target_peft_runtime.py) on a tiny seeded base. Each is loaded
with ``PeftModel.from_pretrained`` of PEFT 0.13.2, 0.14.0, 0.15.0 (each in a venv of
its own, tests/runtime_venvs.py) and 0.21.2 (this environment) on a fresh base, and
the output compared with the trained model's. "Loads" means it reproduces the
trained output; anything else (an exception, a missing key, other outputs) "fails".
adapter-guard's verdict for ``peft@<release>`` must be the same, adapter by adapter.

The key table (``CONFIG_KEYS``) is checked against the ``LoraConfig`` fields of each
of those releases; the rules' other facts are cited in their ``source``/``url``.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy
import peft_writers
import pytest
import target_peft_runtime
from runtime_venvs import installed_version, run_json, runtime_python

from adapter_guard.cli import parse_settings
from adapter_guard.engine import run
from adapter_guard.registry import RULES
from adapter_guard.targets import peft as peft_target
from adapter_guard.targets.model import parse_version

OLD_RELEASES = ("0.13.2", "0.14.0", "0.15.0")
LATEST = peft_target.PROFILE.latest  # the release installed here

#: What each release does with the samples, as seen below; the agreement tests assert these too,
#: so a verdict cannot agree with PEFT by both saying "ok" to everything.
FAILS_AT = {
    # (0.13.2 gets copies without the keys AG921 calls removable: the originals all raise TypeError.)
    "0.13.2": {
        "rank_alpha_pattern",  # `^` key never matches: size mismatch
        "alpha_behind_rank_key",  # rank and alpha keys as one list: layer 0 q_proj loses its alpha
        "alternation_rank_key",  # `.*\.q_proj|v_proj$`: v_proj misses its rank
        "escaped_full_name_rank_key",  # `model\.layers\.0\...` is not the module's name, and no `.` precedes it
        "trainable_tokens",  # trainable_token_indices is set: TypeError
        "gpt2_lora_bias",  # lora_bias is set: TypeError
        "custom_conv_emb_dora",  # no nn.Conv1d LoRA
        "conv1d_lora",
        "conv3d_lora",  # no nn.Conv3d LoRA
    },
    "0.14.0": {
        "rank_alpha_pattern",
        "alternation_rank_key",
        "escaped_full_name_rank_key",
        "trainable_tokens",
        "custom_conv_emb_dora",
        "conv1d_lora",
    },
    "0.15.0": {"custom_conv_emb_dora"},  # DoRA on nn.Conv1d: NotImplementedError
    LATEST: set(),
}


# -- the samples and what each release does with them ------------------------------------------


@pytest.fixture(scope="module")
def samples(peft_corpus, tmp_path_factory) -> dict[str, peft_writers.PeftSample]:
    root = tmp_path_factory.mktemp("target_peft_samples")
    extra = {name: target_peft_runtime.build_sample(name, root / name) for name in target_peft_runtime.CASES}
    return {**peft_corpus, **extra}


def _without_removable_keys(sample: peft_writers.PeftSample, dest: Path, release: str) -> Path:
    """A copy without the keys ``release`` lacks that AG921 says can go (at their defaults)."""
    shutil.copytree(sample.adapter_dir, dest)
    config = peft_writers.read_config(dest)
    for key in peft_target.unknown_keys(config, parse_version(release)):
        if key.harmless:
            del config[key.key]
    peft_writers.write_config(dest, config)
    return dest


@pytest.fixture(scope="module")
def adapters(samples, tmp_path_factory) -> dict[str, dict[str, Path]]:
    """The folder each release is given for each sample: 0.13.2 gets copies without the removable keys."""
    root = tmp_path_factory.mktemp("target_peft_edited")
    given = {release: {name: s.adapter_dir for name, s in samples.items()} for release in FAILS_AT}
    given["0.13.2"] = {name: _without_removable_keys(s, root / name, "0.13.2") for name, s in samples.items()}
    return given


def _python(release: str) -> Path:
    python = runtime_python((f"peft=={release}",))
    assert installed_version(python, "peft") == release
    return python


#: The adapter as the latest release wrote it, given to 0.13.2 beside the edited copies.
AS_WRITTEN = "plain_qv as written"


@pytest.fixture(scope="module")
def releases(samples, adapters, tmp_path_factory) -> dict[str, dict]:
    """Each release's answer {peft, fields (LoraConfig's), outcomes {sample: Outcome}}, loaded once.

    The old releases run in their venvs side by side; the latest runs in this process.
    """
    jobs = {}
    for release in FAILS_AT:
        given = {name: (adapters[release][name], s) for name, s in samples.items()}
        if release == "0.13.2":
            given[AS_WRITTEN] = (samples["plain_qv"].adapter_dir, samples["plain_qv"])
        jobs[release] = target_peft_runtime.write_jobs(given, tmp_path_factory.mktemp(f"peft_{release}"))

    def answer(release: str) -> dict:
        return run_json(_python(release), target_peft_runtime.LOAD_SCRIPT, str(jobs[release]))

    with ThreadPoolExecutor(len(OLD_RELEASES)) as pool:
        answers = dict(zip(OLD_RELEASES, pool.map(answer, OLD_RELEASES)))
    answers[LATEST] = target_peft_runtime.load_jobs(json.loads(jobs[LATEST].read_text(encoding="utf-8")))
    for release, given in answers.items():
        assert given["peft"] == release
        given["outcomes"] = {name: target_peft_runtime.outcome(o) for name, o in given["outcomes"].items()}
    return answers


@pytest.fixture(scope="module")
def loads(releases):
    """``loads(release)`` -> {sample: Outcome}."""
    return lambda release: releases[release]["outcomes"]


def runtime_verdict(outcome: peft_writers.Outcome) -> str:
    return "ok" if outcome.reproduces_live() and not outcome.missing_keys else "fails"


# -- what adapter-guard says -------------------------------------------------------------------


@dataclasses.dataclass
class Judged:
    cell: str
    findings: list  # the PEFT target's findings


def judge(adapter_dirs: dict[str, Path], spec: str) -> dict[str, Judged]:
    """adapter-guard's matrix cell and target findings for each folder at ``--target spec``."""
    results = run(parse_settings([*map(str, adapter_dirs.values()), "--target", spec]))
    judged = {}
    for name, adapter_dir in adapter_dirs.items():
        [result] = [r for r in results if Path(r.path).parent == adapter_dir]
        [cell] = result.targets.values()
        judged[name] = Judged(cell, [f for f in result.findings if f.extra.get("target")])
    return judged


def codes(judged: Judged) -> set[str]:
    return {f.code for f in judged.findings}


# -- the key table is each release's LoraConfig ---------------------------------------------------


@pytest.mark.parametrize("release", [*OLD_RELEASES, LATEST])
def test_the_key_table_lists_exactly_the_lora_config_fields_of_each_release(release, releases):
    known = {k for k, v in peft_target.CONFIG_KEYS.items() if parse_version(v.since) <= parse_version(release)}

    assert known == set(releases[release]["fields"])


def test_the_key_table_defaults_are_what_the_latest_release_writes_for_an_unused_feature(samples):
    written = peft_writers.read_config(samples["plain_qv"].adapter_dir)
    # Keys the sample sets (or save_pretrained fills in) are not defaults.
    set_by_sample = {"r", "lora_alpha", "target_modules", "task_type", "peft_type", "peft_version", "inference_mode"}

    for key, value in written.items():
        if key not in set_by_sample:
            assert value == peft_target.CONFIG_KEYS[key].default, key


# -- agreement with PEFT, release by release ---------------------------------------------------------


@pytest.mark.parametrize("release", [*OLD_RELEASES, LATEST])
def test_the_verdict_for_each_sample_is_what_that_release_does(release, adapters, loads):
    outcomes = loads(release)
    judged = judge(adapters[release], f"peft@{release}")

    runtime = {name: runtime_verdict(outcomes[name]) for name in adapters[release]}
    assert {name for name, v in runtime.items() if v == "fails"} == FAILS_AT[release]
    assert {name: j.cell for name, j in judged.items()} == runtime


def test_without_a_version_every_sample_the_latest_release_loads_gets_no_error_or_warning(samples, loads):
    assert all(runtime_verdict(o) == "ok" for o in loads(LATEST).values())
    judged = judge({name: s.adapter_dir for name, s in samples.items()}, "peft")

    assert {name: j.findings for name, j in judged.items() if j.findings} == {}


def test_every_other_format_in_the_corpora_is_refused_by_peft_and_gets_the_wrong_format_error(
    written_adapters, trainer_corpus, tmp_path
):
    others = {name: d for name, (fmt, d) in written_adapters.items() if fmt != "peft-lora"}
    others.update({f"trainer/{name}": t.adapter_dir for name, t in trainer_corpus.items()})
    # A lone adapters.npz has no config, so the lint reports it (AG821) without target cells.
    others = {name: d for name, d in others.items() if (d / "adapter_config.json").is_file()}
    fake_live = peft_writers.PeftSample("none", Path(), peft_writers.LLAMA, live=numpy.zeros(1))  # never compared
    jobs = target_peft_runtime.write_jobs({name: (d, fake_live) for name, d in others.items()}, tmp_path)
    answer = target_peft_runtime.load_jobs(json.loads(jobs.read_text(encoding="utf-8")))
    judged = judge(others, "peft")

    assert {name for name, o in answer["outcomes"].items() if o["error_type"] is None} == set()
    assert {name: (j.cell, codes(j)) for name, j in judged.items()} == {name: ("fails", {"AG920"}) for name in others}
    some = next(iter(judged.values())).findings[0].message
    assert "convert it to a PEFT LoRA folder" in some


# -- what the findings say, next to what PEFT said -------------------------------------------------------


def test_up_to_0_13_an_unknown_key_is_a_type_error_and_the_finding_names_every_such_key(samples, loads):
    outcome = loads("0.13.2")[AS_WRITTEN]
    written = samples["plain_qv"].adapter_dir
    [finding] = judge({"p": written}, "peft@0.13.2")["p"].findings

    assert outcome.error_type == "TypeError"
    [first] = re.findall(r"unexpected keyword argument '(\w+)'", outcome.error)
    assert finding.code == "AG921"
    named = set(re.findall(r"`(\w+)`", finding.message))
    known = {k for k, v in peft_target.CONFIG_KEYS.items() if parse_version(v.since) <= (0, 13, 2)}
    assert first in named and named == set(peft_writers.read_config(written)) - known and len(named) == 17
    assert "without them the adapter loads the same" in finding.message


def test_up_to_0_13_a_key_that_is_set_is_named_with_the_release_it_needs(adapters, loads):
    judged = judge({"gpt2_lora_bias": adapters["0.13.2"]["gpt2_lora_bias"]}, "peft@0.13.2")["gpt2_lora_bias"]
    outcome = loads("0.13.2")["gpt2_lora_bias"]

    assert outcome.error_type == "TypeError"
    assert outcome.error == "LoraConfig.__init__() got an unexpected keyword argument 'lora_bias'"
    [finding] = judged.findings
    assert "`lora_bias` = true (added in 0.14.0) is set: upgrade to PEFT >= 0.14.0" in finding.message


def _warned_keys(outcome: peft_writers.Outcome) -> set[str]:
    [warning] = [w for w in outcome.warnings if w.startswith("Unexpected keyword arguments")]
    return set(ast.literal_eval(warning[len("Unexpected keyword arguments "): warning.index("]") + 1]))


def test_from_0_14_keys_at_their_defaults_are_the_ones_peft_warns_about_and_only_an_info(adapters, loads):
    outcome = loads("0.14.0")["plain_qv"]
    judged = judge({"plain_qv": adapters["0.14.0"]["plain_qv"]}, "peft@0.14.0")["plain_qv"]

    assert outcome.reproduces_live()
    [finding] = judged.findings
    assert (finding.code, RULES[finding.code].severity) == ("AG923", "info")
    assert set(re.findall(r"`(\w+)`", finding.message)) == _warned_keys(outcome)


def test_from_0_14_a_set_key_the_release_lacks_is_dropped_and_the_adapter_loads_wrong(adapters, loads):
    outcome = loads("0.14.0")["trainable_tokens"]
    judged = judge({"t": adapters["0.14.0"]["trainable_tokens"]}, "peft@0.14.0")["t"]

    assert outcome.loaded and not outcome.reproduces_live()
    assert "trainable_token_indices" in _warned_keys(outcome)
    assert outcome.unexpected_keys == ("base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta",)
    [dropped] = [f for f in judged.findings if f.code == "AG922"]
    assert "`trainable_token_indices` = [1, 2, 3] (added in 0.15.0) is set" in dropped.message
    assert "upgrade to PEFT >= 0.15.0" in dropped.message


def test_a_key_no_release_defines_is_only_an_info_for_the_latest_release_which_ignores_it(samples, tmp_path):
    sample = samples["plain_qv"]
    edited = peft_writers.corrupted_copy(sample, "unknown_config_key", tmp_path / "a")
    outcome = peft_writers.load_sample(sample, edited)
    [finding] = judge({"a": edited}, "peft")["a"].findings

    assert outcome.reproduces_live() and _warned_keys(outcome) == {"from_the_future"}
    assert (finding.code, RULES[finding.code].severity) == ("AG923", "info")
    assert "defined by no release up to 0.21.2: `from_the_future`" in finding.message


def test_before_0_15_an_anchored_rank_pattern_key_is_refused_on_the_module_it_names(adapters, loads):
    outcome = loads("0.14.0")["rank_alpha_pattern"]
    judged = judge({"r": adapters["0.14.0"]["rank_alpha_pattern"]}, "peft@0.14.0")["r"]

    assert outcome.error_type == "RuntimeError"
    assert re.findall(r"size mismatch for base_model\.model\.(\S+)\.lora_A", outcome.error) == [
        "model.layers.1.self_attn.v_proj"
    ]
    [meaning] = [f for f in judged.findings if f.code == "AG924"]
    assert "`model.layers.1.self_attn.v_proj` gets r=8 but its tensors have r=2" in meaning.message
    assert meaning.json_path == ("rank_pattern",)


def test_up_to_0_13_a_module_a_rank_key_matches_loses_its_alpha_pattern_value(adapters, loads):
    before, after = loads("0.13.2")["alpha_behind_rank_key"], loads("0.14.0")["alpha_behind_rank_key"]
    judged = {
        release: judge({"a": adapters[release]["alpha_behind_rank_key"]}, f"peft@{release}")["a"]
        for release in ("0.13.2", "0.14.0")
    }

    assert before.loaded and not before.reproduces_live() and after.reproduces_live()
    [meaning] = [f for f in judged["0.13.2"].findings if f.code == "AG924"]
    assert "`model.layers.0.self_attn.q_proj` gets lora_alpha 16 instead of 32" in meaning.message
    assert meaning.json_path == ("alpha_pattern",)
    assert "AG924" not in codes(judged["0.14.0"])


@pytest.mark.parametrize(
    ("sample", "release", "error"),
    [
        ("conv3d_lora", "0.13.2", ("ValueError", "Target module Conv3d(")),
        ("conv1d_lora", "0.14.0", ("ValueError", "Target module Conv1d(")),
        ("custom_conv_emb_dora", "0.15.0", ("NotImplementedError", "")),
    ],
)
def test_a_layer_type_the_release_cannot_adapt_is_named(sample, release, error, adapters, loads):
    outcome = loads(release)[sample]
    judged = judge({"s": adapters[release][sample]}, f"peft@{release}")["s"]

    assert outcome.error_type == error[0] and outcome.error.startswith(error[1])
    [layer] = [f for f in judged.findings if f.code == "AG925"]
    module = "conv3d" if sample == "conv3d_lora" else "conv1d"
    assert f"`{module}`" in layer.message


# -- the table itself -------------------------------------------------------------------------------


def test_every_rule_is_registered_in_the_peft_range_with_a_source_at_a_release_tag():
    profile = peft_target.PROFILE
    for rule in (profile.wrong_format, *profile.rules):
        assert re.fullmatch(r"AG92\d", rule.code) and rule.code in RULES
        assert re.match(r"https://github\.com/huggingface/peft/blob/v\d+\.\d+\.\d+/src/peft/\S+#L\d+-L\d+$", rule.url)
        assert "src/peft/" in rule.source



# -- the format rules' own fixes load on every release ---------------------------------------------


def test_the_rank_pattern_fix_loads_on_every_release_from_0_13(peft_corpus, tmp_path):
    r"""AG706's fix writes each module's shortest unique dotted suffix (``layers\.0\.self_attn\.q_proj``).

    PEFT 0.6-0.14 match a key as ``.*\.KEY$`` and 0.15+ as ``(.*\.)?(KEY)$`` (the sources AG924
    cites): a proper suffix from a dot boundary means the same module in both, so the fixed file
    reproduces the trained output on every release, and no --target peft@... finding says otherwise.
    """
    sample = peft_corpus[peft_writers.CORRUPTIONS["rank_pattern_removed"].sample]
    fixed = peft_writers.corrupted_copy(sample, "rank_pattern_removed", tmp_path / "fixed")
    run(parse_settings([str(fixed), "--fix"]))
    keys = list(peft_writers.read_config(fixed)["rank_pattern"])
    assert keys and all(k.startswith(r"layers\.") for k in keys), keys

    for release in OLD_RELEASES:
        given = _without_removable_keys(sample, tmp_path / release, release) if release == "0.13.2" else fixed
        if release == "0.13.2":  # the copy above is of the sample: give it the fixed rank_pattern
            config = peft_writers.read_config(given)
            config["rank_pattern"] = peft_writers.read_config(fixed)["rank_pattern"]
            peft_writers.write_config(given, config)
        (tmp_path / f"jobs-{release}").mkdir()
        jobs = target_peft_runtime.write_jobs({"fixed": (given, sample)}, tmp_path / f"jobs-{release}")
        answer = run_json(_python(release), target_peft_runtime.LOAD_SCRIPT, str(jobs))
        assert answer["peft"] == release
        outcome = target_peft_runtime.outcome(answer["outcomes"]["fixed"])
        assert runtime_verdict(outcome) == "ok", (release, outcome)
        judged = judge({"fixed": given}, f"peft@{release}")["fixed"]
        assert "AG924" not in codes(judged) and judged.cell == "ok", (release, judged)
    assert runtime_verdict(peft_writers.load_sample(sample, fixed)) == "ok"
