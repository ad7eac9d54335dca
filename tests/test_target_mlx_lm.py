"""The mlx-lm target (``--target mlx-lm[@VERSION]``): each rule's verdict against the real release.

Adapters come from the real writers: the stock ``mlx_lm lora`` trainer of 0.32.2 (``trainer_corpus``),
edited where a case needs a particular key, and the recorded output of 0.18.2's trainer
(``legacy_corpus``). Each case is loaded with ``mlx_lm.load(base, adapter_path=...)`` of the releases
it speaks about (0.18.2, 0.21.4, 0.28.2 and 0.31.3 in venvs of their own, 0.32.2 here) on the
trainer's own tiny base. adapter-guard's verdict must say what that load did: refused, loaded with
tensors dropped or misshapen (the loader's own parameters are compared with the file), or loaded
as trained (the same logits as 0.32.2 on the adapter as the trainer wrote it).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from target_mlx_lm_runtime import (
    MLX_LM_0_5, MLX_LM_0_13, MLX_LM_0_18, MLX_LM_0_21, MLX_LM_0_28, MLX_LM_0_31, Load, load_many, max_diff,
)

from adapter_guard.engine import run
from adapter_guard.settings import Settings
from adapter_guard.targets import parse_target
from adapter_guard.targets.model import in_range

CURRENT = None  # the mlx-lm installed here (0.32.2)
#: Same logits: what a faithful reload gives (float32 on CPU).
SAME = 1e-4
#: A dropped tensor moves the logits by far more than this on the trained samples.
MOVED = 1e-3


def lint(adapter_dir: Path, target: str, *, fix: bool = False):
    [result] = run(Settings(paths=[adapter_dir], root=adapter_dir, targets=[parse_target(target)], fix=fix))
    return result


def target_codes(result) -> list[str]:
    return sorted(f.code for f in result.findings if f.code.startswith("AG93") and not f.fixed)


def config_of(adapter_dir: Path) -> dict:
    return json.loads((adapter_dir / "adapter_config.json").read_text())


def edit_config(adapter_dir: Path, **changes) -> None:
    (adapter_dir / "adapter_config.json").write_text(json.dumps({**config_of(adapter_dir), **changes}, indent=4))


def tensor_names(adapter_dir: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(adapter_dir / "adapters.safetensors"), "np") as f:
        return list(f.keys())


def write_keys_from_tensors(adapter_dir: Path) -> None:
    """lora_parameters.keys = the layer-relative modules that have tensors (what AG935's fix writes)."""
    keys = sorted({name.rsplit(".", 1)[0].split(".", 3)[3] for name in tensor_names(adapter_dir)})
    edit_config(adapter_dir, lora_parameters={**config_of(adapter_dir)["lora_parameters"], "keys": keys})


def drop_down_proj_key(adapter_dir: Path) -> None:
    lora = config_of(adapter_dir)["lora_parameters"]
    edit_config(adapter_dir, lora_parameters={**lora, "keys": [k for k in lora["keys"] if k != "mlp.down_proj"]})


def fix_for_0_18(adapter_dir: Path) -> None:
    lint(adapter_dir, "mlx-lm@0.18", fix=True)


def steps(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def run_all(adapter_dir: Path) -> None:
        for edit in edits:
            edit(adapter_dir)

    return run_all


def as_written(adapter_dir: Path) -> None:
    pass


#: case -> (trainer sample, how the copy is edited, the releases that load it besides 0.32.2)
CASES: dict[str, tuple[str, Callable[[Path], None], tuple[str, ...]]] = {
    "lora": ("lora-2-layers", as_written, (MLX_LM_0_18, MLX_LM_0_21, MLX_LM_0_28, MLX_LM_0_31)),
    "lora+lora_layers": ("lora-2-layers", lambda d: edit_config(d, lora_layers=2), (MLX_LM_0_18,)),
    "lora+fixed": ("lora-2-layers", fix_for_0_18, (MLX_LM_0_18,)),
    "all-layers+fixed": ("all-layers", fix_for_0_18, (MLX_LM_0_18,)),
    "all-layers+num_layers_0+fixed": (
        "all-layers", steps(lambda d: edit_config(d, num_layers=0), fix_for_0_18), (MLX_LM_0_18,),
    ),
    "all-layers+lora_layers_0+keys": (
        "all-layers", steps(lambda d: edit_config(d, lora_layers=0), write_keys_from_tensors), (MLX_LM_0_18,),
    ),
    "all-layers+keys": ("all-layers", write_keys_from_tensors, (MLX_LM_0_21,)),
    "all-layers+keys+num_layers_0": (
        "all-layers", steps(write_keys_from_tensors, lambda d: edit_config(d, num_layers=0)), (MLX_LM_0_21,),
    ),
    "dora": ("dora", as_written, ()),
    "dora+lora_layers+keys": (
        "dora", steps(lambda d: edit_config(d, lora_layers=2), write_keys_from_tensors), (MLX_LM_0_18,),
    ),
    "dora+fixed": ("dora", fix_for_0_18, (MLX_LM_0_18,)),
    "dora+fine_tune_type_lora": ("dora", lambda d: edit_config(d, fine_tune_type="lora"), (MLX_LM_0_31,)),
    "full": ("full", as_written, (MLX_LM_0_21, MLX_LM_0_31)),
    "full+lora_layers": ("full", lambda d: edit_config(d, lora_layers=2), (MLX_LM_0_18,)),
    "yaml-keys": ("yaml-keys", as_written, (MLX_LM_0_21, MLX_LM_0_31)),
    "yaml-keys-without-down_proj": ("yaml-keys", drop_down_proj_key, (MLX_LM_0_31,)),
    "embedding": ("embedding", as_written, (MLX_LM_0_21, MLX_LM_0_31)),
    "gpt-oss-experts": ("gpt-oss-experts", as_written, (MLX_LM_0_28,)),
}


class Oracle:
    """Every case, loaded by each release that speaks about it, one interpreter per release."""

    def __init__(self, cases: dict[str, tuple[Path, Path]], trained: dict[str, Load]):
        self.cases = cases
        self.trained = trained  # 0.32.2's load of each case's sample as the trainer wrote it
        self._loads: dict[str | None, dict[str, Load]] = {}

    def dir(self, case: str) -> Path:
        return self.cases[case][0]

    def load(self, release: str | None, case: str) -> Load:
        if release not in self._loads:
            names = [c for c, (_, _, releases) in CASES.items() if release is CURRENT or release in releases]
            loads = load_many(release, [(self.cases[c][1], self.cases[c][0]) for c in names])
            self._loads[release] = dict(zip(names, loads))
        return self._loads[release][case]

    def trained_logits(self, case: str) -> Load:
        return self.trained[CASES[case][0]]


@pytest.fixture(scope="module")
def oracle(trainer_corpus, tmp_path_factory) -> Oracle:
    root = tmp_path_factory.mktemp("mlx-lm-target")
    cases = {}
    for case, (name, edit, _) in CASES.items():
        sample = trainer_corpus[name]
        adapter_dir = sample.copy_to(root / case)
        edit(adapter_dir)
        cases[case] = (adapter_dir, sample.base_dir)
    samples = sorted({name for name, _, _ in CASES.values()})
    trained = load_many(CURRENT, [(trainer_corpus[n].base_dir, trainer_corpus[n].adapter_dir) for n in samples])
    return Oracle(cases, dict(zip(samples, trained)))


# -- AG931 / AG935: a current adapter on mlx-lm 0.18 ----------------------------------


def test_a_current_adapter_fails_on_0_18_for_want_of_lora_layers(oracle):
    old = oracle.load(MLX_LM_0_18, "lora")

    assert "AG931" in target_codes(lint(oracle.dir("lora"), "mlx-lm@0.18"))
    assert old.error.startswith("AttributeError") and "lora_layers" in old.error


def test_the_0_18_fixes_load_the_trained_model_on_0_18_and_0_32(oracle):
    """lora_layers from num_layers, keys from the tensors: the trained model's logits on both releases."""
    adapter_dir, trained = oracle.dir("lora+fixed"), oracle.trained_logits("lora+fixed")

    assert (config_of(adapter_dir)["lora_layers"], config_of(adapter_dir)["num_layers"]) == (2, 2)
    assert target_codes(lint(adapter_dir, "mlx-lm@0.18")) == []
    assert max_diff(oracle.load(MLX_LM_0_18, "lora+fixed"), trained) < SAME
    assert max_diff(oracle.load(CURRENT, "lora+fixed"), trained) < SAME


def test_without_keys_0_18_drops_every_module_but_q_and_v(oracle):
    """AG935: lora_layers alone makes 0.18 load, but with Llama's default q/v set only."""
    old = oracle.load(MLX_LM_0_18, "lora+lora_layers")

    assert target_codes(lint(oracle.dir("lora+lora_layers"), "mlx-lm@0.18")) == ["AG935"]
    assert max_diff(old, oracle.trained_logits("lora+lora_layers")) > MOVED
    assert old.dropped and not any(".self_attn.q_proj." in n or ".self_attn.v_proj." in n for n in old.dropped)


def test_the_default_key_set_changed_between_0_21_and_0_28_2(oracle):
    """AG935's range: 0.21.4 still wraps Llama's q/v only; 0.28.2 wraps every Linear, as the trainer did."""
    at_0_21, at_0_28 = oracle.load(MLX_LM_0_21, "lora"), oracle.load(MLX_LM_0_28, "lora")

    assert target_codes(lint(oracle.dir("lora"), "mlx-lm@0.21.4")) == ["AG935"]
    assert max_diff(at_0_21, oracle.trained_logits("lora")) > MOVED and at_0_21.dropped
    assert target_codes(lint(oracle.dir("lora"), "mlx-lm@0.28.2")) == []
    assert max_diff(at_0_28, oracle.trained_logits("lora")) < SAME and at_0_28.dropped == ()


def test_num_layers_minus_one_is_spelt_lora_layers_minus_one(oracle):
    adapter_dir = oracle.dir("all-layers+fixed")

    assert (config_of(adapter_dir)["num_layers"], config_of(adapter_dir)["lora_layers"]) == (-1, -1)
    assert max_diff(oracle.load(MLX_LM_0_18, "all-layers+fixed"), oracle.trained_logits("all-layers+fixed")) < SAME


def test_num_layers_0_is_spelt_lora_layers_minus_one_because_0_wraps_nothing_on_0_18(oracle):
    fixed, zero = "all-layers+num_layers_0+fixed", "all-layers+lora_layers_0+keys"

    assert config_of(oracle.dir(fixed))["lora_layers"] == -1
    assert max_diff(oracle.load(MLX_LM_0_18, fixed), oracle.trained_logits(fixed)) < SAME
    assert set(oracle.load(MLX_LM_0_18, zero).dropped) == set(tensor_names(oracle.dir(zero)))
    assert target_codes(lint(oracle.dir(zero), "mlx-lm@0.18")) == ["AG934"]


# -- AG932: DoRA on 0.18 ------------------------------------------------------------------


def test_a_dora_adapter_without_use_dora_loads_as_plain_lora_on_0_18(oracle):
    old = oracle.load(MLX_LM_0_18, "dora+lora_layers+keys")

    assert target_codes(lint(oracle.dir("dora+lora_layers+keys"), "mlx-lm@0.18")) == ["AG932"]
    assert max_diff(old, oracle.trained_logits("dora")) > MOVED
    assert old.dropped and all(n.endswith(".m") for n in old.dropped)


@pytest.fixture(scope="module")
def untied(tmp_path_factory):
    """For 0.5.0 and 0.13.0, whose Llama needs an untied lm_head: legacy_writers' base (the one 0.5.0's
    trainer ran on), and stock mlx-lm LoRA / DoRA layers on it saved as ``mlx_lm.lora`` saves them."""
    import builders
    import legacy_writers

    root = tmp_path_factory.mktemp("untied")
    legacy_writers._write_llama_base(root / "base", root / "data")
    adapters = {}
    for name, scale, dora in (("scale-20", 20.0, False), ("scale-8", 8.0, False), ("dora", 8.0, True)):
        params = {"rank": 4, "scale": scale, "dropout": 0.0, "keys": builders.ATTENTION_KEYS}
        model = builders.make_live_adapter(legacy_writers.llama_config(), num_layers=2, dora=dora, **params)
        adapters[name] = builders.save_mlx_lm_style(
            model, root / name, num_layers=2, lora_parameters=params, fine_tune_type="dora" if dora else "lora"
        )
    return root / "base", adapters


def copy_dir(adapter_dir: Path, dest: Path) -> Path:
    return Path(shutil.copytree(adapter_dir, dest))


def test_before_0_14_2_a_config_without_alpha_fails_and_alpha_rank_loads_as_trained(untied, tmp_path):
    base, adapters = untied
    bare = copy_dir(adapters["scale-8"], tmp_path / "bare")
    edit_config(bare, lora_layers=2)
    fixed = copy_dir(adapters["scale-8"], tmp_path / "fixed")
    lint(fixed, "mlx-lm@0.13.0", fix=True)

    [now] = load_many(CURRENT, [(base, adapters["scale-8"])])
    at_0_13 = load_many(MLX_LM_0_13, [(base, bare), (base, fixed)])

    assert target_codes(lint(bare, "mlx-lm@0.13.0")) == ["AG939"]
    assert at_0_13[0].error == "KeyError: 'alpha'"
    assert config_of(fixed)["lora_parameters"]["alpha"] == 4 and target_codes(lint(fixed, "mlx-lm@0.13.0")) == []
    assert max_diff(at_0_13[1], now) < SAME
    assert max_diff(load_many(CURRENT, [(base, fixed)])[0], now) < SAME


def test_before_0_13_1_there_is_no_dora_and_m_is_dropped(untied, tmp_path):
    base, adapters = untied
    fixed = copy_dir(adapters["dora"], tmp_path / "dora")
    lint(fixed, "mlx-lm@0.18", fix=True)  # lora_layers and use_dora
    lint(fixed, "mlx-lm@0.13.0", fix=True)  # alpha; DoRA itself has no fix there

    [now] = load_many(CURRENT, [(base, adapters["dora"])])
    [at_0_13] = load_many(MLX_LM_0_13, [(base, fixed)])
    [at_0_18] = load_many(MLX_LM_0_18, [(base, fixed)])

    assert config_of(fixed)["use_dora"] is True
    assert target_codes(lint(fixed, "mlx-lm@0.13.0")) == ["AG932"]
    assert max_diff(at_0_13, now) > MOVED and at_0_13.dropped and all(n.endswith(".m") for n in at_0_13.dropped)
    assert target_codes(lint(fixed, "mlx-lm@0.13.1")) == []
    assert max_diff(at_0_18, now) < SAME


def test_the_use_dora_fix_loads_the_dora_adapter_on_0_18_as_trained(oracle):
    adapter_dir, trained = oracle.dir("dora+fixed"), oracle.trained_logits("dora")

    assert (config_of(adapter_dir)["use_dora"], config_of(adapter_dir)["fine_tune_type"]) == (True, "dora")
    assert target_codes(lint(adapter_dir, "mlx-lm@0.18")) == []
    assert max_diff(oracle.load(MLX_LM_0_18, "dora+fixed"), trained) < SAME
    assert max_diff(oracle.load(CURRENT, "dora+fixed"), trained) < SAME


# -- AG933: full fine-tuning before 0.19 -----------------------------------------------------


def test_a_full_fine_tune_does_not_load_on_0_18_and_gets_no_fix(oracle, tmp_path):
    adapter_dir = Path(shutil.copytree(oracle.dir("full+lora_layers"), tmp_path / "full"))

    result = lint(adapter_dir, "mlx-lm@0.18", fix=True)

    assert target_codes(result) == ["AG933"]
    assert config_of(adapter_dir) == config_of(oracle.dir("full+lora_layers"))
    assert oracle.load(MLX_LM_0_18, "full+lora_layers").error is not None
    assert oracle.load(CURRENT, "full+lora_layers").logits is not None


# -- AG934: tensors dropped before 0.32 ---------------------------------------------------


def test_keys_that_miss_a_module_lose_its_tensors_silently_before_0_32(oracle):
    case = "yaml-keys-without-down_proj"
    old, new = oracle.load(MLX_LM_0_31, case), oracle.load(CURRENT, case)

    assert max_diff(old, oracle.trained_logits(case)) > MOVED
    assert old.dropped and all(".mlp.down_proj." in n for n in old.dropped)
    assert "incompatible tensors" in new.error
    assert target_codes(lint(oracle.dir(case), "mlx-lm@0.31")) == ["AG934"]
    assert target_codes(lint(oracle.dir(case), "mlx-lm")) == []  # 0.32 refuses: the format rule (AG402) says it


def test_m_tensors_without_dora_are_dropped_silently_before_0_32(oracle):
    case = "dora+fine_tune_type_lora"
    old, new = oracle.load(MLX_LM_0_31, case), oracle.load(CURRENT, case)
    result = lint(oracle.dir(case), "mlx-lm@0.31")

    assert max_diff(old, oracle.trained_logits(case)) > MOVED
    assert old.dropped and all(n.endswith(".m") for n in old.dropped)
    assert "incompatible tensors" in new.error
    assert target_codes(result) == ["AG934"]
    assert "AG305" in [f.code for f in result.findings]  # the format rule says why


# -- AG937: a negative num_layers on 0.19-0.21.4 ---------------------------------------------


def test_num_layers_minus_one_skips_layer_0_on_0_21(oracle):
    """With keys written (0.21 has the per-model default set, AG935), only the layer slice differs."""
    case = "all-layers+keys"
    old = oracle.load(MLX_LM_0_21, case)

    assert target_codes(lint(oracle.dir(case), "mlx-lm@0.21.4")) == ["AG937"]
    assert target_codes(lint(oracle.dir(case), "mlx-lm@0.21.5")) == []
    assert max_diff(old, oracle.trained_logits(case)) > MOVED
    assert old.dropped and all(n.startswith("model.layers.0.") for n in old.dropped)


def test_num_layers_0_wraps_every_layer_on_0_21_and_0_32(oracle):
    case = "all-layers+keys+num_layers_0"

    assert target_codes(lint(oracle.dir(case), "mlx-lm@0.21.4")) == []
    assert max_diff(oracle.load(MLX_LM_0_21, case), oracle.trained_logits(case)) < SAME
    assert max_diff(oracle.load(CURRENT, case), oracle.trained_logits(case)) < SAME


# -- AG938: the expert factors' layout --------------------------------------------------------


def test_current_expert_factors_go_in_misshapen_on_0_28_2(oracle):
    """0.28.2 takes every expert lora_a into its (r * experts, in) parameter unchecked, and its forward
    pass fails; on gpt-oss it fails even earlier (LoRASwitchLinear without `sorted_indices`, also fixed
    by #522), so the misshapen tensors are the evidence for the layout claim."""
    old = oracle.load(MLX_LM_0_28, "gpt-oss-experts")

    assert target_codes(lint(oracle.dir("gpt-oss-experts"), "mlx-lm@0.28.2")) == ["AG938"]
    assert target_codes(lint(oracle.dir("gpt-oss-experts"), "mlx-lm@0.28.3")) == []
    assert old.error is None and old.forward_error is not None
    assert old.misshapen and all(n.endswith(".lora_a") and ".mlp.experts." in n for n in old.misshapen)


def test_expert_factors_in_the_old_layout_are_refused_by_0_32(tmp_path):
    """The pre-0.28.3 layout, header-level (builders.legacy_switch_adapter): 0.32.2 checks shapes."""
    import builders
    from mlx_lm.tuner.utils import load_adapters

    adapter_dir = builders.legacy_switch_adapter(tmp_path / "legacy-switch")

    assert target_codes(lint(adapter_dir, "mlx-lm")) == ["AG938"]
    assert target_codes(lint(adapter_dir, "mlx-lm@0.28.2")) == []
    with pytest.raises(ValueError, match=r"incompatible tensors[\s\S]*experts\.\w+\.lora_a: adapter shape"):
        load_adapters(builders.make_base(builders.tiny_gpt_oss_config(2)), str(adapter_dir))


# -- AG930: formats mlx-lm does not load ----------------------------------------------------


def test_a_peft_adapter_is_the_wrong_format_for_mlx_lm(peft_corpus, trainer_corpus, tmp_path):
    name = next(iter(peft_corpus))
    adapter_dir = Path(shutil.copytree(peft_corpus[name].adapter_dir, tmp_path / name))

    result = lint(adapter_dir, "mlx-lm")
    [load] = load_many(CURRENT, [(trainer_corpus["lora-2-layers"].base_dir, adapter_dir)])

    assert target_codes(result) == ["AG930"]
    assert "PEFT" in next(f.message for f in result.findings if f.code == "AG930")
    assert load.error is not None


@pytest.mark.parametrize(("target", "effect"), [("mlx-lm", "refuses"), ("mlx-lm@0.31", "ignored")])
def test_an_mlx_vlm_adapter_is_the_wrong_format_for_mlx_lm(vlm_corpus, tmp_path, target, effect):
    """mlx-lm 0.32.2 refuses `language_model.` tensors (d53e70f7 load_adapters); 0.31.3 drops them
    (v0.31.3 mlx_lm/tuner/utils.py#L137, strict=False): reference §2, RUN-M. mlx-lm cannot build the
    LLaVA base, so the load is not rerun here."""
    adapter_dir = Path(shutil.copytree(vlm_corpus["lora"].adapter_dir, tmp_path / "vlm"))

    result = lint(adapter_dir, target)

    assert target_codes(result) == ["AG930"]
    assert effect in next(f.message for f in result.findings if f.code == "AG930")


# -- AG936: before the adapter config ------------------------------------------------------


def test_before_0_6_the_config_is_not_read_so_only_scale_20_loads_as_trained(untied):
    """mlx-lm 0.5.0 takes ``adapter_file=`` and rebuilds each module as LoRALinear(r=8, alpha=16,
    scale=10), i.e. scale 20 (mlx-examples d661440d llms/mlx_lm/tuner/utils.py apply_lora_layers)."""
    base, adapters = untied
    dirs = [adapters["scale-20"], adapters["scale-8"]]

    now = load_many(CURRENT, [(base, d) for d in dirs])
    old = load_many(MLX_LM_0_5, [(base, d) for d in dirs], by_file=True)

    assert max_diff(old[0], now[0]) < SAME and target_codes(lint(dirs[0], "mlx-lm@0.5")) == []
    assert max_diff(old[1], now[1]) > MOVED and target_codes(lint(dirs[1], "mlx-lm@0.5")) == ["AG936"]
    assert "AG936" not in target_codes(lint(dirs[1], "mlx-lm@0.6"))


# -- no false alarms ------------------------------------------------------------------------

#: Every trainer sample: 0.32.2 wrote them and loads them (tests/test_mlx_trainer.py).
TRAINER_SAMPLES = ("lora-2-layers", "dora", "all-layers", "yaml-keys", "embedding", "full", "qlora",
                   "gpt-oss-experts", "gpt-oss-attention", "resume")  # fmt: skip


@pytest.mark.parametrize("target", ["mlx-lm", "mlx-lm@0.32.0", "mlx-lm@0.31.3", "mlx-lm@0.28.3"])
def test_the_current_trainers_adapters_get_no_target_finding_where_they_load(trainer_corpus, target):
    found = {name: target_codes(lint(trainer_corpus[name].adapter_dir, target)) for name in TRAINER_SAMPLES}

    assert found == {name: [] for name in TRAINER_SAMPLES}


@pytest.mark.parametrize("case", ["lora", "yaml-keys", "embedding", "full"])
def test_what_the_no_false_alarm_test_relies_on_0_31_loads_them_as_trained(oracle, case):
    old = oracle.load(MLX_LM_0_31, case)

    assert max_diff(old, oracle.trained_logits(case)) < SAME and old.dropped == () and old.misshapen == ()


@pytest.mark.parametrize("case", ["yaml-keys", "embedding", "full"])
def test_adapters_0_21_loads_as_trained_get_no_target_finding_at_0_21(oracle, case):
    old = oracle.load(MLX_LM_0_21, case)

    assert max_diff(old, oracle.trained_logits(case)) < SAME and old.dropped == ()
    assert target_codes(lint(oracle.dir(case), "mlx-lm@0.21.4")) == []


@pytest.mark.parametrize("name", ["mlx_lm_0_18_lora", "mlx_lm_0_18_dora"])
def test_the_0_18_trainers_adapters_get_no_target_finding_at_0_18(legacy_corpus, name):
    """The recorded 0.18.2 output, which 0.18.2 loads (its logits are recorded: tests/legacy_writers.py)."""
    result = lint(legacy_corpus[name].adapter_dir, "mlx-lm@0.18")

    assert target_codes(result) == []


@pytest.mark.parametrize("target", ["mlx-lm", "mlx-lm@0.18"])
def test_every_other_corpus_sample_is_judged_by_its_format_alone(written_adapters, target):
    """PEFT and mlx-vlm samples get AG930 and nothing else; mlx-lm's own (0.18) get no error or warning at
    0.18, where they load, and nothing from the profile at the latest (the format rule AG811 speaks there);
    a configless adapters.npz is not judged (it has no config to lint)."""
    expected = {"peft-lora": ["AG930"], "mlx-vlm": ["AG930"], "mlx-vlm-legacy": ["AG930"], "mlx-lm-pre-0.19": []}
    found, wanted = {}, {}
    for name, (fmt, adapter_dir) in written_adapters.items():
        if fmt == "adapters-npz":
            continue
        found[name] = target_codes(lint(adapter_dir, target))
        wanted[name] = expected[fmt]

    assert found == wanted


def test_every_rule_has_a_range_a_source_and_a_registered_code():
    from adapter_guard.registry import RULES
    from adapter_guard.targets.mlx_lm import PROFILE

    for rule in (PROFILE.wrong_format, *PROFILE.rules):
        assert in_range((0, 32, 2), rule.versions) in (True, False)
        assert rule.code in RULES and rule.url.startswith("https://github.com/ml-explore/")
        assert rule.source and rule.fails
