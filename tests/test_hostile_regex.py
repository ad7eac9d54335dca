"""Hostile regexes in a PEFT config: a finding within a time bound, never a hang.

PEFT's ``target_modules``/``exclude_modules`` strings, ``rank_pattern``/``alpha_pattern``
keys, ``modules_to_save`` entries and ``layers_pattern`` are Python regexes from the checked
file. One that backtracks catastrophically is cut short by ``peft.PATTERN_SECONDS`` and
reported (AG717); one that does not compile is reported (AG716). Real patterns, as PEFT's
own writer saves them, stay silent (tests/test_formats_peft.py runs the whole corpus).
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time

import pytest

from adapter_guard.formats import peft
from hostile import exit_problems, run_cli, safetensors_bytes, tensor

DIMS, RANK = 16, 4
LAYERS = ("model.layers.0", "model.layers.1")
MODULES = ("self_attn.q_proj", "self_attn.v_proj")
#: Exponential on any name of 20 characters or more: every character matches either branch.
EXPONENTIAL = "(.|.)*X"


def peft_weights(names) -> bytes:
    """A PEFT LoRA safetensors file: lora_A (r, in) and lora_B (out, r) for each module name."""
    header, offset = {}, 0
    for name in names:
        for leaf, shape in (("lora_A.weight", [RANK, DIMS]), ("lora_B.weight", [DIMS, RANK])):
            size = 4 * shape[0] * shape[1]
            header[f"base_model.model.{name}.{leaf}"] = tensor("F32", shape, [offset, offset + size])
            offset += size
    return safetensors_bytes(header, bytes(offset))


def write_peft_adapter(directory, names=None, **config):
    directory.mkdir(parents=True, exist_ok=True)
    names = names or [f"{layer}.{module}" for layer in LAYERS for module in MODULES]
    (directory / "adapter_model.safetensors").write_bytes(peft_weights(names))
    body = {"peft_type": "LORA", "r": RANK, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], **config}
    path = directory / "adapter_config.json"
    path.write_text(json.dumps(body, indent=2))
    return path


def lint(path, *args):
    started = time.monotonic()
    run = run_cli(path, "--output-format", "json", *args)
    return run, time.monotonic() - started


@pytest.fixture
def short_budget(monkeypatch):
    monkeypatch.setattr(peft, "PATTERN_SECONDS", 0.3)
    return 0.3


# -- the premise: an interval timer interrupts a C-level match -----------------------------


def test_an_interval_timer_cuts_a_catastrophic_re_match_short():
    started = time.monotonic()
    with pytest.raises(peft.PatternTimeout), peft.time_budget(0.2):
        re.match(EXPONENTIAL, "model.layers.0.self_attn.q_proj" * 2)

    assert time.monotonic() - started < 2
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


def test_the_time_budget_never_takes_over_a_timer_the_host_has_armed():
    def host_handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGALRM, host_handler)
    signal.setitimer(signal.ITIMER_REAL, 60)
    try:
        with peft.time_budget(0.1):
            time.sleep(0.3)  # would raise PatternTimeout if the budget had replaced the host's timer
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 50 < remaining <= 60
        assert signal.getsignal(signal.SIGALRM) is host_handler
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- catastrophic patterns: AG717 within the bound, exit 1 -------------------------------

HOSTILE = {
    "target_modules string": {"target_modules": EXPONENTIAL},
    "exclude_modules string": {"exclude_modules": EXPONENTIAL},
    "rank_pattern key": {"rank_pattern": {EXPONENTIAL: 2}},
    "alpha_pattern key": {"alpha_pattern": {EXPONENTIAL: 2}},
    "modules_to_save entry": {"modules_to_save": [EXPONENTIAL]},
    "layers_pattern": {"layers_to_transform": [0], "layers_pattern": EXPONENTIAL},
    "polynomial target_modules string": {"target_modules": ".*" * 12 + "X"},
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_catastrophic_pattern_is_reported_within_the_budget(tmp_path, short_budget, case):
    path = write_peft_adapter(tmp_path / "adapter", **HOSTILE[case])

    run, seconds = lint(path)

    assert exit_problems(run) == [] and run.code == 1
    [finding] = [f for f in run.findings() if f["code"] == "AG717"]
    assert EXPONENTIAL in finding["message"] or ".*.*" in finding["message"]
    assert seconds < short_budget + 3


@pytest.mark.parametrize("pattern", ["(a+)+$", "(.*a){25}"])
def test_the_classic_catastrophic_shapes_on_a_long_module_name_are_reported(tmp_path, short_budget, pattern):
    """The shapes from the ReDoS literature, against a name a hostile header can carry."""
    name = "model.layers.0." + "a" * 40 + "!"
    path = write_peft_adapter(tmp_path / "adapter", names=[name], target_modules=[name], rank_pattern={pattern: 2})

    run, seconds = lint(path)

    assert "AG717" in run.codes()
    assert seconds < short_budget + 3


def test_with_the_default_budget_fix_ends_in_seconds_and_writes_nothing(tmp_path):
    path = write_peft_adapter(tmp_path / "adapter", target_modules=EXPONENTIAL)
    before = path.read_bytes()

    run, seconds = lint(path, "--fix", "--unsafe-fixes")

    assert exit_problems(run) == [] and run.code == 1
    assert "AG717" in run.codes()
    assert seconds < peft.PATTERN_SECONDS + 5
    assert path.read_bytes() == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


# -- patterns that do not compile: AG716, the checks that need them skipped ------------------

INVALID = {
    "target_modules string": ({"target_modules": "(q_proj"}, "target_modules"),
    "exclude_modules string": ({"exclude_modules": "[k_proj"}, "exclude_modules"),
    "rank_pattern key": ({"rank_pattern": {"q_proj)": 2}}, "rank_pattern"),
    "alpha_pattern key": ({"alpha_pattern": {"*": 2}}, "alpha_pattern"),
    "modules_to_save entry": ({"modules_to_save": ["lm_head("]}, "modules_to_save"),
    "layers_pattern": ({"layers_to_transform": [0], "layers_pattern": "layers)("}, "layers_pattern"),
}


@pytest.mark.parametrize("case", INVALID)
def test_a_pattern_that_does_not_compile_is_one_error_and_nothing_else(tmp_path, case):
    config, field = INVALID[case]
    path = write_peft_adapter(tmp_path / "adapter", **config)

    run, _ = lint(path)

    assert exit_problems(run) == [] and run.code == 1
    errors = [f for f in run.findings() if f["severity"] in ("error", "warning")]
    assert [f["code"] for f in errors] == ["AG716"] or (
        # modules_to_save names a module with no tensor: AG713 says that too, rightly.
        case == "modules_to_save entry" and sorted(f["code"] for f in errors) == ["AG713", "AG716"]
    )
    [invalid] = [f for f in errors if f["code"] == "AG716"]
    assert invalid["message"].startswith(field) and "re.error" in invalid["message"]


def test_a_key_valid_only_inside_peft_wrapping_is_valid():
    """PEFT compiles ``(.*\\.)?(KEY)$``: ``a)|(b`` does not compile alone but does wrapped."""
    from adapter_guard.formats.shared import Emitter

    emit = Emitter("adapter_config.json")
    peft.run_rules({"peft_type": "LORA", "rank_pattern": {"q_proj)|(v_proj": 4}}, None, emit)

    assert [f.code for f in emit.findings] == []


# -- where no timer can be set, the lint still runs ----------------------------------------


def test_a_lint_from_another_thread_runs_unbounded_and_says_the_same(tmp_path):
    path = write_peft_adapter(tmp_path / "adapter", target_modules=r".*\.layers\.1\.self_attn\.(q|v)_proj")
    in_main = lint(path)[0].findings()
    in_thread = []

    worker = threading.Thread(target=lambda: in_thread.append(lint(path)[0]))
    worker.start()
    worker.join(30)

    assert exit_problems(in_thread[0]) == []
    assert in_thread[0].findings() == in_main
    assert {f["code"] for f in in_main} == {"AG708"}  # layer 0's tensors are outside the regex


@pytest.mark.parametrize("layers_pattern", [5, True, {"layers": 1}, ["layers", 1]])
def test_a_layers_pattern_of_the_wrong_type_is_ag004_not_a_crash(tmp_path, layers_pattern):
    path = write_peft_adapter(tmp_path / "adapter", layers_to_transform=[0], layers_pattern=layers_pattern)

    run, _ = lint(path)

    assert exit_problems(run) == [] and run.code == 1
    assert [f["code"] for f in run.findings() if f["severity"] in ("error", "warning")] == ["AG004"]
