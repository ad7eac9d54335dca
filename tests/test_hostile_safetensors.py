"""Hostile adapters.safetensors files through the CLI: AG102, exit 1, bounded memory, config untouched.

The reader itself is specified in test_safetensors_header.py; these tests hold
the whole command to it: whatever the weights file holds, the run ends with
an AG102 finding that says what is wrong, and ``--fix`` writes nothing it
would have needed the tensors to prove.

Memory bound (docs/robustness.md): a header length above MAX_HEADER_BYTES
(100 MB, the format's own limit) or above the file size is refused before
any of it is read; an accepted header of N bytes is read once (N bytes) and
parsed in at most 32 x N.
"""

from __future__ import annotations

import json
import os
import struct
import tracemalloc

import pytest

from adapter_guard.safetensors_header import MAX_HEADER_BYTES
from hostile import COMPLETE, exit_problems, lora_header, run_cli, safetensors_bytes, tensor, write_adapter

MiB = 1024 * 1024
VALID_HEADER, VALID_DATA = lora_header()
ENTRY = "model.layers.0.self_attn.q_proj.lora_a"


def with_entry(**changes) -> bytes:
    """The valid file with some fields of one tensor entry replaced."""
    header = json.loads(json.dumps(VALID_HEADER))
    header[ENTRY].update(changes)
    return safetensors_bytes(header, VALID_DATA)


HOSTILE = {
    "empty file": (b"", "file is empty"),
    "3 bytes": (b"\x01\x02\x03", "shorter than the 8-byte header length"),
    "length larger than the file": (struct.pack("<Q", 1000) + b"{}", "exceeds the file size"),
    "length of 8 EB": (struct.pack("<Q", 8 * 10**18) + b"{}", "exceeds the file size"),
    "length of 2**64 - 1": (b"\xff" * 8 + b"{}", "exceeds the file size"),
    "length 0": (struct.pack("<Q", 0) + b"{}", "header length is 0"),
    "header not JSON": (safetensors_bytes(b"not json"), "not valid JSON"),
    "header not UTF-8": (safetensors_bytes(b'{"\xff": 1}'), "not UTF-8"),
    "header nested 100,000 deep": (safetensors_bytes(b"[" * 100_000 + b"]" * 100_000), "JSON"),
    "header is an array": (safetensors_bytes(b"[]"), "JSON array, not an object"),
    "header is a number": (safetensors_bytes(b"3"), "JSON number, not an object"),
    "header is a string": (safetensors_bytes(b'"x"'), "JSON string, not an object"),
    "offsets past the end": (with_entry(data_offsets=[0, len(VALID_DATA) + 4]), "past the end of the data region"),
    "offsets overlapping": (
        safetensors_bytes({"a.lora_a": tensor("F32", [2], [0, 8]), "a.lora_b": tensor("F32", [2], [4, 12])}, bytes(12)),
        "overlap",
    ),
    "offsets negative": (with_entry(data_offsets=[-4, 0]), "not 0 <= begin <= end"),
    "offsets reversed": (with_entry(data_offsets=[8, 4]), "not 0 <= begin <= end"),
    "offsets not a pair": (with_entry(data_offsets=[0]), "not [begin, end]"),
    "offsets past 2**64": (with_entry(data_offsets=[0, 2**64]), "past the end"),
    "unknown dtype": (with_entry(dtype="Q4_K"), 'unknown dtype "Q4_K"'),
    "lower-case dtype": (with_entry(dtype="f32"), 'unknown dtype "f32"'),
    "negative dimension": (with_entry(shape=[-16, 8]), "not a list of non-negative integers"),
    "fractional dimension": (with_entry(shape=[16.0, 8]), "not a list of non-negative integers"),
    "dimension above 2**64": (with_entry(shape=[2**70, 0], data_offsets=[0, 0]), "above 2**64 - 1"),
    "huge dimensions": (with_entry(shape=[2**40, 2**40]), "more bytes than the whole data region"),
    "shape too small for the data": (with_entry(shape=[1, 8]), "hold 512 bytes"),
    "entry not an object": (safetensors_bytes({ENTRY: [1, 2]}), "not an object"),
    "entry without dtype": (safetensors_bytes({ENTRY: {"shape": [1], "data_offsets": [0, 4]}}, bytes(4)), "has no 'dtype'"),
    "__metadata__ an array": (safetensors_bytes({"__metadata__": ["mlx"]}), "__metadata__ is a JSON array"),
    "__metadata__ a string": (safetensors_bytes({"__metadata__": "mlx"}), "__metadata__ is a JSON string"),
    "__metadata__ value a number": (safetensors_bytes({"__metadata__": {"format": 1}}), "not a string"),
    "__metadata__ key a lone surrogate": (safetensors_bytes(b'{"__metadata__": {"\\ud800": "x"}}'), "unpaired surrogate"),
    "thousands of tensors, one bad": (
        safetensors_bytes(
            {**{f"model.layers.{i}.q.lora_a": tensor("F32", [1, 1], [4 * i, 4 * i + 4]) for i in range(5000)},
             "model.layers.9999.q.lora_a": tensor("F32", [1, 1], [0, 8])},
            bytes(4 * 5000),
        ),
        '"model.layers.9999.q.lora_a" has shape [1, 1] of F32',
    ),
}


@pytest.mark.parametrize("weights, message", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_weights_are_ag102_saying_why(tmp_path, weights, message):
    path = write_adapter(tmp_path / "adapter", weights=weights)
    run = run_cli(path, "--output-format", "json")
    assert exit_problems(run) == []
    assert run.code == 1
    [finding] = [f for f in run.findings() if f["code"] == "AG102"]
    assert message in finding["message"]
    assert "\n" not in finding["message"]


@pytest.mark.parametrize("weights", [v for v, _ in HOSTILE.values()][:12], ids=list(HOSTILE)[:12])
def test_a_fix_never_guesses_from_unreadable_weights(tmp_path, weights):
    # Without the tensors, rank cannot be proven: the fix writes what needs no tensors (dropout) and nothing else.
    config = COMPLETE.replace('        "rank": 8,\n', "").replace('        "dropout": 0.0,\n', "")
    path = write_adapter(tmp_path / "adapter", config, weights=weights)
    run = run_cli(path, "--fix", "--unsafe-fixes", "--output-format", "json")
    assert exit_problems(run) == [] and run.code == 1
    assert {"AG102", "AG202"} <= run.codes()
    assert path.read_text() == config.replace('"scale": 20.0\n', '"scale": 20.0,\n        "dropout": 0.0\n')


def test_thousands_of_valid_tensors_are_read(tmp_path):
    # dims 8, not 2: a rank above a module's widths is what an unconverted PEFT file looks like (AG831)
    header, data = lora_header(layers=range(1250), rank=8, dims=8)  # 5,000 tensors
    path = write_adapter(tmp_path / "adapter", weights=safetensors_bytes(header, data))
    assert run_cli(path).code == 0


def test_the_layer_count_is_not_a_resource(tmp_path):
    # A 20-digit layer index is just a number: no list of that length is ever built.
    # 8-wide, not 1-wide: rank 8 on a 1-wide module is what an unconverted PEFT file looks like (AG831).
    header = {"model.layers.99999999999999999999.q.lora_a": tensor("F32", [8, 8], [0, 256]),
              "model.layers.99999999999999999999.q.lora_b": tensor("F32", [8, 8], [256, 512])}
    path = write_adapter(tmp_path / "adapter", weights=safetensors_bytes(header, bytes(512)))
    run = run_cli(path, "--output-format", "json")
    assert exit_problems(run) == [] and run.code == 0


def test_a_layer_index_of_5000_digits_is_a_finding_not_a_crash(tmp_path):
    index = "9" * 5000
    header = {f"model.layers.{index}.q.lora_a": tensor("F32", [1, 1], [0, 4]),
              f"model.layers.{index}.q.lora_b": tensor("F32", [1, 1], [4, 8])}
    path = write_adapter(tmp_path / "adapter", weights=safetensors_bytes(header, bytes(8)))
    assert exit_problems(run_cli(path)) == []


def peak_allocated(*args) -> tuple[int, object]:
    """The most Python memory one CLI run holds at once, and the run."""
    tracemalloc.start()
    try:
        run = run_cli(*args)
        return tracemalloc.get_traced_memory()[1], run
    finally:
        tracemalloc.stop()


def sparse_weights(directory, size: int, header_length: int):
    """A weights file of ``size`` bytes (sparse: costs no disk) claiming ``header_length``."""
    with open(directory / "adapters.safetensors", "wb") as f:
        f.write(struct.pack("<Q", header_length))
        f.truncate(size)


@pytest.mark.parametrize("claimed", [MAX_HEADER_BYTES + 1, 2**40, 8 * 10**18])
def test_a_header_above_the_limit_is_refused_without_reading_it(tmp_path, claimed):
    path = write_adapter(tmp_path / "adapter")
    sparse_weights(path.parent, 2 * 1024 * MiB, claimed)  # 2 GB file: the claim may even fit it
    peak, run = peak_allocated(path, "--output-format", "json")
    assert run.code == 1 and run.codes() == {"AG102"}
    assert peak < 2 * MiB


def test_parsing_an_accepted_hostile_header_stays_under_32_times_its_size(tmp_path):
    raw = b"[" + b",".join([b"{}"] * (1 * MiB // 3)) + b"]"  # the most wasteful shape per byte
    path = write_adapter(tmp_path / "adapter", weights=safetensors_bytes(raw))
    peak, run = peak_allocated(path, "--output-format", "json")
    assert "JSON array, not an object" in run.findings()[0]["message"]
    assert peak < 32 * len(raw) + 2 * MiB


def test_weights_that_are_a_directory_are_ag102(tmp_path):
    path = write_adapter(tmp_path / "adapter")
    os.remove(path.parent / "adapters.safetensors")
    (path.parent / "adapters.safetensors").mkdir()
    run = run_cli(path, "--output-format", "json")
    assert run.code == 1 and [f["message"] for f in run.findings()] == ["`adapters.safetensors`: cannot read: a directory"]
