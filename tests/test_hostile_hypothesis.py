"""Generated configs and safetensors headers, valid and broken: every run ends in findings or a clean error.

Each example writes one adapter directory and runs the real CLI on it with
generated flags and output format. ``hostile.judge`` lists every broken
promise: an exit code other than 0/1, a traceback, a malformed report, a
config changed without ``--fix``, a fixed file that does not parse, dropped
a key or respelled a value it did not need to touch, a second ``--fix`` that
still changes something, or a temporary file left behind.

``bench/fuzz.py`` runs the same generators for 10,000+ examples.
"""

from __future__ import annotations

import os
import random
import tempfile
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter_guard.engine import PARALLEL_THRESHOLD
from hostile import (COMPLETE, Example, RandomDraw, exit_problems, gen_config_bytes, gen_example, gen_weights,
                     hypothesis_draw, lora_header, run_cli, safetensors_bytes)

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
VALID_WEIGHTS = safetensors_bytes(*lora_header())


@contextmanager
def scratch():
    """A fresh directory, also the working directory (the repository root adapter-guard sees)."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(previous)


def judged(example: Example) -> list[str]:
    with scratch() as root:
        return example.judge(root / "adapter")


@PROPERTY
@given(st.data())
def test_generated_configs_with_valid_weights(data):
    draw = hypothesis_draw(data)
    example = Example(gen_config_bytes(draw), VALID_WEIGHTS, None, (), draw("choice", ([], ["--fix"], ["--fix", "--unsafe-fixes"])),
                      draw("choice", ("json", "text")))
    assert not judged(example), example


@PROPERTY
@given(st.data())
def test_generated_safetensors_headers_under_a_complete_config(data):
    draw = hypothesis_draw(data)
    example = Example(COMPLETE.encode(), gen_weights(draw), None, (), draw("choice", ([], ["--fix", "--unsafe-fixes"])), "json")
    assert not judged(example), example


@PROPERTY
@given(st.data())
def test_generated_adapters_with_any_flags_and_format(data):
    example = gen_example(hypothesis_draw(data))
    assert not judged(example), example


def test_a_tree_of_generated_adapters_gets_the_same_answers_in_parallel():
    # Enough adapters for the engine's process pool: one hostile file must not upset the others.
    examples = [gen_example(RandomDraw(random.Random(f"tree:{i}"))) for i in range(PARALLEL_THRESHOLD + 16)]
    with scratch() as root:
        for i, example in enumerate(examples):
            example.write(root / f"adapter-{i:03d}")
        whole = run_cli(".", "--output-format", "json")
        one_by_one = [f for i in range(len(examples)) for f in run_cli(f"adapter-{i:03d}", "--output-format", "json").findings()]
    assert exit_problems(whole) == []
    assert whole.findings() == one_by_one
