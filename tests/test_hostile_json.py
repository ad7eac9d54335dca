"""Broken and hostile adapter_config.json files: a finding with the right code, exit 1, never damage.

Every case runs the real CLI twice: a lint (the finding, exit 1, no
traceback) and ``--fix --unsafe-fixes`` (the file is either untouched or a
valid edit that dropped no key and respelled no untouched value).
"""

from __future__ import annotations

import pytest

from hostile import COMPLETE, exit_problems, preservation_problems, run_cli, write_adapter


def with_value(path: str, literal: str, text: str = COMPLETE) -> str:
    """COMPLETE with one field's value replaced by ``literal`` (added when absent)."""
    key = path.split(".")[-1]
    for line in text.splitlines():
        if line.strip().startswith(f'"{key}":'):
            trailing = "," if line.rstrip().endswith(",") else ""
            return text.replace(line, line[: line.index(":") + 1] + f" {literal}{trailing}", 1)
    anchor = '    "lora_parameters": {\n' if path.startswith("lora_parameters.") else "{\n"
    indent = "        " if path.startswith("lora_parameters.") else "    "
    return text.replace(anchor, f'{anchor}{indent}"{key}": {literal},\n', 1)


def lint(tmp_path, config: str | bytes):
    path = write_adapter(tmp_path / "adapter", config)
    return path, run_cli(path, "--output-format", "json")


def assert_fix_does_no_harm(path, before: bytes):
    run = run_cli(path, "--fix", "--unsafe-fixes", "--output-format", "json")
    assert exit_problems(run) == []
    after = path.read_bytes()
    if after != before:
        assert preservation_problems(before, after, unsafe=True) == []


SYNTAX = {
    "trailing comma": b'{"num_layers": -1,}',
    "empty file": b"",
    "whitespace only": b" \n\t\r\n",
    "byte-order mark": b"\xef\xbb\xbf" + COMPLETE.encode(),
    "UTF-16": COMPLETE.encode("utf-16"),
    "invalid UTF-8 byte": COMPLETE.replace("tiny", "tin\udcff").encode("utf-8", "surrogateescape"),
    "encoded surrogate (CESU-8)": COMPLETE.replace("tiny", "tiny\udc80").encode("utf-8", "surrogatepass"),
    "NUL after the object": COMPLETE.encode() + b"\x00",
    "truncated": COMPLETE.encode()[:60],
    "single quotes": b"{'num_layers': -1}",
    "comment": b'{"num_layers": -1 // all\n}',
    "unterminated string": b'{"model": "tiny',
    "raw newline in a string": b'{"model": "ti\nny"}',
    "100,000 nested arrays": b"[" * 100_000 + b"]" * 100_000,
    "600 nested objects in a value": b'{"x": ' + b'{"a": ' * 600 + b"1" + b"}" * 601,
    "5,000-digit integer": b'{"num_layers": ' + b"9" * 5000 + b"}",
    "two documents": COMPLETE.encode() * 2,
}


@pytest.mark.parametrize("data", SYNTAX.values(), ids=SYNTAX.keys())
def test_unparseable_config_is_ag001_and_never_touched(tmp_path, data):
    path, run = lint(tmp_path, data)
    assert exit_problems(run) == []
    assert (run.code, run.codes()) == (1, {"AG001"})
    assert run_cli(path, "--fix", "--unsafe-fixes").code == 1
    assert path.read_bytes() == data


@pytest.mark.parametrize("literal, kind", [("[1, 2]", "array"), ("3", "number"), ('"x"', "string"),
                                           ("null", "null"), ("true", "boolean")])
def test_top_level_that_is_not_an_object_is_ag003(tmp_path, literal, kind):
    path, run = lint(tmp_path, literal)
    assert (run.code, run.codes()) == (1, {"AG003"})
    assert f"JSON {kind}" in run.findings()[0]["message"]
    assert_fix_does_no_harm(path, literal.encode())


def test_duplicate_key_is_ag002_and_a_fix_keeps_both_members(tmp_path):
    config = with_value("num_layers", "-1").replace('"fine_tune_type": "lora",', '"rank": 8,\n    "rank": 4,')
    path, run = lint(tmp_path, config)
    assert run.code == 1
    assert {"AG002", "AG304"} <= run.codes()
    fixed = run_cli(path, "--fix")
    assert fixed.code == 1  # the duplicate stays: which one was meant is not a fix's call
    after = path.read_text()
    assert '"rank": 8,\n    "rank": 4,' in after and '"fine_tune_type": "lora"' in after
    assert preservation_problems(config.encode(), after.encode(), unsafe=False) == []


def test_duplicate_key_inside_lora_parameters_is_ag002(tmp_path):
    _, run = lint(tmp_path, COMPLETE.replace('"rank": 8,', '"rank": 8,\n        "rank": 8,'))
    assert (run.code, run.codes()) == (1, {"AG002"})


@pytest.mark.parametrize("field, literal", [("lora_parameters.scale", "NaN"), ("lora_parameters.dropout", "Infinity"),
                                            ("num_layers", "-Infinity"), ("learning_rate", "NaN")])
def test_nan_and_infinity_literals_are_ag004_at_their_line(tmp_path, field, literal):
    config = with_value(field, literal)
    path, run = lint(tmp_path, config)
    assert run.code == 1
    [finding] = [f for f in run.findings() if literal in f["message"]]
    assert finding["code"] == "AG004"
    assert config.splitlines()[finding["line"] - 1].strip().startswith(f'"{field.split(".")[-1]}": {literal}')
    assert_fix_does_no_harm(path, config.encode())
    assert literal in path.read_text()  # reported, never rewritten


WRONG_TYPES = [
    *(("lora_parameters.rank", v) for v in ('"8"', "[8]", "8.0", "true", "null", "0", "-1", "{}")),
    *(("lora_parameters.scale", v) for v in ('"20"', "[20.0]", "null", "true", "{}", "1" + "0" * 400)),
    *(("lora_parameters.dropout", v) for v in ('"0"', "1.0", "-0.1", "null", "[0]", "1" + "0" * 400)),
    *(("num_layers", v) for v in ('"16"', '{"a": 1}', "1.5", "true", "null", "[]")),
    *(("lora_parameters.keys", v) for v in ('"self_attn.q_proj"', "[1]", '{"a": 1}', "[null]", "true")),
    *(("fine_tune_type", v) for v in ("3", "[]", "{}", "null", '"LoRA"', '""')),
    *(("unsloth_mlx_lora_module_paths", v) for v in ('"model.layers.0.self_attn.q_proj"', "[1]", "{}")),
    *(("rank", v) for v in ('"8"', "[1]")),
    *(("scale", v) for v in ('"20"', "{}")),
    *(("dropout", v) for v in ("2", '"x"')),
]


@pytest.mark.parametrize("field, literal", WRONG_TYPES, ids=[f"{f}={v[:12]}" for f, v in WRONG_TYPES])
def test_wrong_type_for_a_known_field_is_ag004_and_the_fix_leaves_it(tmp_path, field, literal):
    config = with_value(field, literal)
    path, run = lint(tmp_path, config)
    assert exit_problems(run) == []
    assert run.code == 1
    key = field.split(".")[-1]
    wrong = [f for f in run.findings() if f["code"] == "AG004"]
    assert wrong, run.findings()
    assert any(config.splitlines()[f["line"] - 1].strip().startswith(f'"{key}":') for f in wrong)
    assert_fix_does_no_harm(path, config.encode())
    assert f'"{key}": {literal}' in path.read_text()


@pytest.mark.parametrize("literal, kind", [('"x"', "str"), ("[1]", "list"), ("3", "int"), ("true", "bool")])
def test_lora_parameters_of_the_wrong_type_is_ag004(tmp_path, literal, kind):
    config = COMPLETE.replace('"lora_parameters": {\n        "rank": 8,\n        "dropout": 0.0,\n        "scale": 20.0\n    },',
                              f'"lora_parameters": {literal},')
    path, run = lint(tmp_path, config)
    assert run.code == 1
    assert [f["message"] for f in run.findings() if f["code"] == "AG004"] == [f"lora_parameters must be an object, not {kind}"]
    assert_fix_does_no_harm(path, config.encode())
    assert path.read_text() == config


def test_null_lora_parameters_is_ag201_and_the_fix_fills_it_from_the_tensors(tmp_path):
    config = COMPLETE.replace('{\n        "rank": 8,\n        "dropout": 0.0,\n        "scale": 20.0\n    }', "null")
    path, run = lint(tmp_path, config)
    assert run.code == 1 and {"AG201", "AG204"} <= run.codes()
    assert run_cli(path, "--fix").code == 1  # scale cannot be proven: it stays a finding
    after = path.read_bytes()
    assert preservation_problems(config.encode(), after, unsafe=False) == []
    assert b'"rank": 8' in after and b'"dropout": 0.0' in after and b'"scale"' not in after


def test_huge_integers_within_the_digit_limit_are_judged_not_crashed(tmp_path):
    huge = "9" * 400
    config = with_value("lora_parameters.rank", huge, with_value("alpha", huge, with_value("num_layers", huge)))
    path, run = lint(tmp_path, config)
    assert exit_problems(run) == []
    assert run.code == 1 and "AG203" in run.codes()  # a 400-digit rank is not the tensors' 8
    assert_fix_does_no_harm(path, config.encode())


def test_nesting_under_the_limit_is_read(tmp_path):
    config = with_value("unknown_key", "[" * 500 + "]" * 500)
    path, run = lint(tmp_path, config)
    assert (run.code, run.findings()) == (0, [])


def test_escaped_surrogate_and_control_characters_in_values_survive_a_fix(tmp_path):
    config = with_value("model", r'"\ud800 \u0000 \u001b[31m \u2028"').replace('        "dropout": 0.0,\n', "")
    path, run = lint(tmp_path, config)
    assert run.codes() == {"AG205"}
    assert run_cli(path, "--fix").code == 0
    assert preservation_problems(config.encode(), path.read_bytes(), unsafe=False) == []
    assert r'"\ud800 \u0000 \u001b[31m \u2028"' in path.read_text()


def test_crlf_config_is_fixed_with_crlf(tmp_path):
    config = COMPLETE.replace('        "dropout": 0.0,\n', "").replace("\n", "\r\n")
    path, _ = lint(tmp_path, config)
    assert run_cli(path, "--fix").code == 0
    after = path.read_bytes()
    assert b"\r\n" in after and b"\n" not in after.replace(b"\r\n", b"")
    assert preservation_problems(config.encode(), after, unsafe=False) == []


@pytest.mark.parametrize("lora_parameters", ['"lora_parameters": null, ', ""])
def test_one_unsafe_fix_run_settles_a_missing_lora_parameters_with_alpha(tmp_path, lora_parameters):
    # Found by the hypothesis suite: the scale fix ran before the fix creating the object it writes into.
    config = '{%s"num_layers": -1, "fine_tune_type": "lora", "alpha": 16}' % lora_parameters
    path, _ = lint(tmp_path, config)
    assert run_cli(path, "--fix", "--unsafe-fixes").code == 0
    after = path.read_bytes()
    assert b'"scale": 2.0' in after and preservation_problems(config.encode(), after, unsafe=True) == []
    assert run_cli(path, "--fix", "--unsafe-fixes").code == 0 and path.read_bytes() == after
