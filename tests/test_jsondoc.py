"""The JSON document model: loading, positions, and edits that keep every other byte."""

from __future__ import annotations

import copy
import json
import math
import subprocess

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adapter_guard import jsondoc
from adapter_guard.jsondoc import MAX_DEPTH, JsonDocError, format_path, load, unified_diff

# What mlx_lm.lora writes: every CLI argument, sorted, json.dump(indent=4).
MLX_LM_CONFIG = {
    "adapter_path": "adapters",
    "batch_size": 4,
    "config": None,
    "data": "data",
    "fine_tune_type": "lora",
    "grad_checkpoint": False,
    "iters": 1000,
    "learning_rate": 1e-05,
    "lora_parameters": {"rank": 8, "dropout": 0.0, "scale": 20.0},
    "lr_schedule": None,
    "mask_prompt": False,
    "max_seq_length": 2048,
    "model": "mlx-community/Llama-3.2-1B-Instruct-4bit",
    "num_layers": 16,
    "optimizer": "adam",
    "optimizer_config": {"adam": {}, "adamw": {}},
    "resume_adapter_file": None,
    "save_every": 100,
    "seed": 0,
    "steps_per_eval": 200,
    "steps_per_report": 10,
    "test": False,
    "test_batches": 500,
    "train": True,
    "val_batches": 25,
    "wandb": None,
}


def mlx_lm_text(**changes) -> str:
    config = dict(MLX_LM_CONFIG, **changes)
    return json.dumps(dict(sorted(config.items())), indent=4)


def strict_equal(a, b) -> bool:
    """Equal as JSON: 1, 1.0 and true differ; -0.0 differs from 0.0; NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(strict_equal, a, b))
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


def set_text(text: str, *sets) -> str:
    return load(text).set_values(sets)


# -- load: the value ----------------------------------------------------------------


def test_value_is_what_json_loads_returns():
    text = mlx_lm_text()
    assert strict_equal(load(text.encode()).value, json.loads(text))


def test_duplicate_keys_give_json_loads_value():
    text = '{"a": 1, "b": 2, "a": 3}'
    value = load(text).value
    assert value == json.loads(text)
    assert list(value) == list(json.loads(text))


def test_text_is_the_decoded_file():
    assert load('{"é": 1}'.encode()).text == '{"é": 1}'


# -- load: errors ---------------------------------------------------------------------


def test_empty_file_is_an_error():
    with pytest.raises(JsonDocError, match="file is empty"):
        load(b"")


def test_whitespace_only_file_is_an_error():
    with pytest.raises(JsonDocError, match="only whitespace"):
        load(b" \n\t\r\n")


def test_utf8_bom_is_an_error(tmp_path):
    data = b'\xef\xbb\xbf{"num_layers": 16}'
    with pytest.raises(JsonDocError, match="starts with a UTF-8 byte-order mark"):
        load(data)


def test_utf8_bom_is_rejected_by_stock_json_load_too(tmp_path):
    # The message claims json.load(open(path)), as mlx-lm calls it, fails; check the claim.
    path = tmp_path / "adapter_config.json"
    path.write_bytes(b'\xef\xbb\xbf{"num_layers": 16}')
    with open(path, encoding="utf-8") as f, pytest.raises(json.JSONDecodeError, match="BOM"):
        json.load(f)


def test_utf16_file_is_an_error():
    with pytest.raises(JsonDocError, match="UTF-16"):
        load('{"a": 1}'.encode("utf-16"))


def test_non_utf8_byte_is_reported_where_it_is():
    with pytest.raises(JsonDocError, match="0xff is not valid UTF-8") as info:
        load(b'{\n  "a": "x\xff"\n}')
    assert (info.value.line, info.value.column) == (2, 10)


def test_syntax_error_is_reported_where_it_is():
    with pytest.raises(JsonDocError, match="delimiter") as info:
        load(b'{\n    "a": 1\n    "b": 2\n}')
    assert (info.value.line, info.value.column) == (3, 5)


def test_trailing_garbage_is_an_error():
    with pytest.raises(JsonDocError, match="unexpected data after the end") as info:
        load(b'{"a": 1}\n}')
    assert info.value.line == 2


def test_a_number_too_long_for_python_is_an_error():
    with pytest.raises(JsonDocError, match="number too long") as info:
        load('{\n "a": ' + "1" * 5000 + "}")
    assert (info.value.line, info.value.column) == (2, 7)


def test_a_raw_tab_in_a_string_is_an_error():
    with pytest.raises(JsonDocError, match="raw control character"):
        load('{"a": "x\ty"}')


def test_trailing_comma_is_an_error():
    with pytest.raises(JsonDocError):
        load(b'{"a": 1,}')


def test_nesting_at_the_bound_is_accepted():
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load(text).span((0,) * (MAX_DEPTH - 1)) == (MAX_DEPTH - 1, MAX_DEPTH + 1)


def test_nesting_beyond_the_bound_is_an_error():
    text = '{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1)
    with pytest.raises(JsonDocError, match=f"nesting deeper than {MAX_DEPTH}"):
        load(text)


def test_very_deep_unclosed_nesting_is_an_error_not_a_recursion_error():
    with pytest.raises(JsonDocError, match="nesting deeper"):
        load("[" * 200_000)


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = '["' + "[{" * 2000 + '"]'
    assert load(text).value == ["[{" * 2000]


@pytest.mark.parametrize(
    "data",
    [b"", b"\xef\xbb\xbf{}", b"\xff", b"{", b'{"a" 1}', b"[1] 2", b"[" * 1000, b'{"a": NaN', b"{'a': 1}", b"9" * 5000],
)
def test_every_error_is_one_line_with_a_position(data):
    with pytest.raises(JsonDocError) as info:
        load(data)
    assert "\n" not in str(info.value)
    assert info.value.line >= 1 and info.value.column >= 1


def test_json_doc_error_is_a_value_error():
    assert issubclass(JsonDocError, ValueError)


# -- load: duplicates and non-finite numbers ----------------------------------------


def test_duplicate_keys_are_reported_with_the_path_of_their_object():
    doc = load('{"lora_parameters": {"rank": 8, "rank": 16}, "seed": 0, "seed": 1}')
    assert doc.duplicates == [(("lora_parameters",), "rank"), ((), "seed")]


def test_a_key_repeated_three_times_is_reported_once():
    assert load('{"a": 1, "a": 2, "a": 3}').duplicates == [((), "a")]


def test_same_key_in_different_objects_is_not_a_duplicate():
    assert load('{"a": {"x": 1}, "b": {"x": 2}}').duplicates == []


def test_escaped_and_raw_spellings_of_a_key_are_duplicates():
    assert load('{"ab": 1, "a\\u0062": 2}').duplicates == [((), "ab")]


def test_nan_and_infinities_are_reported_by_path():
    doc = load('{"scale": NaN, "x": [1, Infinity, -Infinity]}')
    assert doc.nonfinite == [("scale",), ("x", 1), ("x", 2)]


def test_clean_document_has_no_duplicates_or_nonfinite():
    doc = load(mlx_lm_text())
    assert (doc.duplicates, doc.nonfinite) == ([], [])


def test_clean_document_loads_without_building_positions(monkeypatch):
    monkeypatch.setattr(jsondoc, "_scan", lambda text: pytest.fail("positions built eagerly"))
    load(mlx_lm_text())


def test_nan_spelled_inside_a_string_is_not_nonfinite():
    assert load('{"a": "NaN", "b": "-Infinity"}').nonfinite == []


# -- positions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal", ["1e-05", "20.0", "-0.0", "1E5", "100000000000000000000", '"x\\"y"', "null", "[1, [2]]", "{}"]
)
def test_span_covers_exactly_the_value(literal):
    text = '{"a": ' + literal + ' , "b": 1}'
    start, end = load(text).span(("a",))
    assert text[start:end] == literal


def test_span_of_a_missing_path_is_none():
    assert load('{"a": {"b": 1}}').span(("a", "c")) is None


def test_span_of_list_item():
    text = '{"keys": ["q_proj", "v_proj"]}'
    start, end = load(text).span(("keys", 1))
    assert text[start:end] == '"v_proj"'


def test_span_of_an_escaped_key_uses_its_decoded_name():
    text = '{"\\u00e9t\\u00e9": 1}'
    assert load(text).span(("été",)) == (len(text) - 2, len(text) - 1)


def test_span_of_a_duplicate_key_is_its_last_occurrence():
    text = '{"a": 1, "a": 22}'
    assert load(text).span(("a",)) == (14, 16)


def test_key_line_is_the_line_of_the_key():
    text = mlx_lm_text()
    expected = text.splitlines().index('        "scale": 20.0') + 1
    assert load(text).key_line(("lora_parameters", "scale")) == expected


def test_key_line_is_the_key_not_the_value_when_they_are_on_different_lines():
    assert load('{\n  "a":\n    1\n}').key_line(("a",)) == 2


def test_key_line_of_a_list_item_is_the_line_of_the_item():
    assert load('{"keys": [\n  "q",\n  "v"\n]}').key_line(("keys", 1)) == 3


def test_key_line_of_the_root_is_one():
    assert load("\n\n{}").key_line(()) == 1


def test_key_line_of_a_missing_path_is_its_deepest_existing_parent():
    assert load('{\n"a": 1,\n"lora_parameters": {}\n}').key_line(("lora_parameters", "rank")) == 3


def test_key_line_counts_crlf_lines():
    assert load('{\r\n  "a": 1,\r\n  "b": 2\r\n}').key_line(("b",)) == 3


# -- edits: replacing values -----------------------------------------------------


def test_replacing_a_value_changes_only_that_value():
    before = mlx_lm_text()
    after = set_text(before, (("lora_parameters", "rank"), 16))
    assert after == before.replace('"rank": 8', '"rank": 16')


def test_floats_are_written_as_python_json_writes_them():
    after = set_text('{"dropout": 0, "scale": 1}', (("dropout",), 0.0), (("scale",), 20.0))
    assert after == '{"dropout": 0.0, "scale": 20.0}'


@pytest.mark.parametrize("spelling", ["1e-05", "20.0", "-0.0", "1E5", "1e+5", "100000000000000000000", "0.10"])
def test_number_spellings_elsewhere_are_kept(spelling):
    before = '{"x": ' + spelling + ', "rank": 4}'
    assert set_text(before, (("rank",), 8)) == '{"x": ' + spelling + ', "rank": 8}'


def test_setting_an_equal_value_keeps_its_spelling():
    before = '{"learning_rate": 1E-5, "scale": 20.00}'
    assert set_text(before, (("learning_rate",), 1e-05), (("scale",), 20.0)) == before


def test_int_and_float_are_different_values():
    assert set_text('{"scale": 20}', (("scale",), 20.0)) == '{"scale": 20.0}'


def test_replacing_null_is_allowed():
    assert set_text('{"lora_parameters": null}', (("lora_parameters",), {"rank": 8})) == (
        '{"lora_parameters": {"rank": 8}}'
    )


def test_replacing_a_list_item():
    assert set_text('{"keys": ["a", "b"]}', (("keys", 1), "c")) == '{"keys": ["a", "c"]}'


def test_replacing_a_dict_with_more_keys_edits_only_inside_it():
    before = '{\n    "lora_parameters": {\n        "rank": 8\n    }\n}'
    after = set_text(before, (("lora_parameters",), {"rank": 8, "scale": 20.0}))
    assert after == '{\n    "lora_parameters": {\n        "rank": 8,\n        "scale": 20.0\n    }\n}'


def test_list_value_in_a_multi_line_object_is_written_as_a_block():
    before = '{\n    "lora_parameters": {\n        "rank": 8\n    }\n}'
    after = set_text(before, (("lora_parameters", "keys"), ["self_attn.q_proj", "self_attn.v_proj"]))
    assert after == (
        '{\n    "lora_parameters": {\n        "rank": 8,\n        "keys": [\n'
        '            "self_attn.q_proj",\n            "self_attn.v_proj"\n        ]\n    }\n}'
    )


def test_list_value_in_a_one_line_object_is_written_inline():
    after = set_text('{"rank": 8}', (("keys",), ["q", "v"]))
    assert after == '{"rank": 8, "keys": ["q", "v"]}'


def test_an_inline_list_in_a_multi_line_file_stays_inline():
    before = '{\n    "keys": ["q", "v"]\n}'
    assert set_text(before, (("keys",), ["q", "k", "v"])) == '{\n    "keys": ["q", "k", "v"]\n}'


def test_a_block_list_replaced_by_a_longer_one_stays_a_block():
    before = '{\n  "keys": [\n    "q"\n  ]\n}'
    assert set_text(before, (("keys",), ["q", "v"])) == '{\n  "keys": [\n    "q",\n    "v"\n  ]\n}'


def test_empty_list_value_is_written_as_brackets():
    assert set_text('{\n    "a": 1\n}', (("keys",), [])) == '{\n    "a": 1,\n    "keys": []\n}'


# -- edits: inserting members ------------------------------------------------------


def test_insert_into_a_4_space_object():
    before = '{\n    "a": 1,\n    "b": 2\n}\n'
    assert set_text(before, (("c",), 3)) == '{\n    "a": 1,\n    "b": 2,\n    "c": 3\n}\n'


def test_insert_into_a_2_space_object():
    before = '{\n  "a": 1,\n  "b": {\n    "x": 1\n  }\n}'
    assert set_text(before, (("b", "y"), 2)) == '{\n  "a": 1,\n  "b": {\n    "x": 1,\n    "y": 2\n  }\n}'


def test_insert_into_a_tab_indented_object():
    before = '{\n\t"a": 1,\n\t"b": 2\n}'
    assert set_text(before, (("c",), {"d": 1})) == '{\n\t"a": 1,\n\t"b": 2,\n\t"c": {\n\t\t"d": 1\n\t}\n}'


def test_insert_into_a_compact_object():
    assert set_text('{"a":1,"b":2}', (("c",), [1, 2])) == '{"a":1,"b":2,"c":[1,2]}'


def test_insert_into_a_one_line_object():
    assert set_text('{"a": 1, "b": 2}', (("c",), 3)) == '{"a": 1, "b": 2, "c": 3}'


def test_insert_into_a_one_line_object_with_one_member():
    assert set_text('{"a": 1}', (("c",), 3)) == '{"a": 1, "c": 3}'


def test_insert_into_a_compact_object_with_one_member():
    assert set_text('{"a":1}', (("c",), 3)) == '{"a":1,"c":3}'


def test_insert_into_a_multi_line_object_with_one_member():
    assert set_text('{\n   "a": 1\n}', (("c",), 3)) == '{\n   "a": 1,\n   "c": 3\n}'


def test_insert_copies_the_objects_key_separator():
    assert set_text('{"a" : 1, "b" : 2}', (("c",), 3)) == '{"a" : 1, "b" : 2, "c" : 3}'


def test_insert_keeps_the_whitespace_before_the_closing_brace():
    before = '{\n    "a": 1   \n\n}'
    assert set_text(before, (("c",), 3)) == '{\n    "a": 1,\n    "c": 3   \n\n}'


def test_insert_into_an_empty_inline_object():
    assert set_text('{"a": {}}', (("a", "b"), 1)) == '{"a": {"b": 1}}'


def test_insert_into_an_empty_object_with_a_space():
    assert set_text('{"a": { }}', (("a", "b"), 1)) == '{"a": {"b": 1}}'


def test_insert_into_an_empty_object_in_a_multi_line_parent():
    before = '{\n    "x": 1,\n    "lora_parameters": {}\n}'
    after = set_text(before, (("lora_parameters", "rank"), 8))
    assert after == '{\n    "x": 1,\n    "lora_parameters": {\n        "rank": 8\n    }\n}'


def test_insert_into_an_empty_top_level_object():
    assert set_text("{}\n", (("num_layers",), 16)) == '{\n    "num_layers": 16\n}\n'


def test_missing_parent_objects_are_created_in_one_insertion():
    before = '{\n    "num_layers": 16\n}'
    after = set_text(before, (("lora_parameters", "rank"), 8))
    assert after == '{\n    "num_layers": 16,\n    "lora_parameters": {\n        "rank": 8\n    }\n}'


def test_sets_under_one_missing_parent_share_its_insertion():
    after = set_text('{"a": 1}', (("lp", "rank"), 8), (("lp", "scale"), 20.0))
    assert after == '{"a": 1, "lp": {"rank": 8, "scale": 20.0}}'


def test_new_keys_go_last_in_the_order_they_were_set():
    after = set_text('{"a": 1}', (("z",), 1), (("b",), 2))
    assert after == '{"a": 1, "z": 1, "b": 2}'


def test_unknown_keys_and_key_order_are_kept():
    before = '{"zeta": [1, {"k": "v"}], "alpha": true, "unsloth_extra": {"x": null}}'
    after = set_text(before, (("num_layers",), -1))
    assert after == before[:-1] + ', "num_layers": -1}'


# -- edits: line endings, trailing newline, unicode -----------------------------------


def test_crlf_file_gets_crlf_lines():
    before = '{\r\n    "a": 1\r\n}\r\n'
    after = set_text(before, (("lp",), {"rank": 8}))
    assert after == '{\r\n    "a": 1,\r\n    "lp": {\r\n        "rank": 8\r\n    }\r\n}\r\n'


@pytest.mark.parametrize("ending", ["", "\n", "\r\n", "\n\n  "])
def test_whatever_follows_the_document_is_kept(ending):
    assert set_text('{"a": 1}' + ending, (("a",), 2)) == '{"a": 2}' + ending


def test_file_with_raw_unicode_gets_raw_unicode():
    assert set_text('{"model": "modèle"}', (("name",), "日本")) == '{"model": "modèle", "name": "日本"}'


def test_ascii_file_gets_escaped_unicode():
    assert set_text('{"model": "mod\\u00e8le"}', (("name",), "é")) == '{"model": "mod\\u00e8le", "name": "\\u00e9"}'


def test_escapes_elsewhere_are_kept():
    before = '{"path": "a\\/b\\u00e8\\n", "n": 1}'
    assert set_text(before, (("n",), 2)) == '{"path": "a\\/b\\u00e8\\n", "n": 2}'


# -- edits: several sets, duplicates, errors -------------------------------------------


def test_several_sets_are_applied_together():
    before = mlx_lm_text()
    after = set_text(
        before,
        (("num_layers",), -1),
        (("lora_parameters", "rank"), 4),
        (("adapter_path",), "out"),
        (("zzz",), 1),
    )
    expected = json.loads(before)
    expected.update(num_layers=-1, adapter_path="out", zzz=1)
    expected["lora_parameters"]["rank"] = 4
    assert strict_equal(json.loads(after), expected)
    assert after.replace('"adapter_path": "out"', '"adapter_path": "adapters"') \
        .replace('"num_layers": -1', '"num_layers": 16') \
        .replace('"rank": 4', '"rank": 8') \
        .replace(',\n    "zzz": 1', "") == before


def test_a_later_set_of_the_same_path_wins():
    assert set_text('{"a": 1}', (("a",), 2), (("a",), 3)) == '{"a": 3}'


def test_a_later_set_inside_an_earlier_value_is_merged():
    after = set_text('{"a": 1}', (("b",), {"x": 1}), (("b", "y"), 2))
    assert after == '{"a": 1, "b": {"x": 1, "y": 2}}'


def test_the_last_occurrence_of_a_duplicate_key_is_edited():
    assert set_text('{"a": 1, "b": 0, "a": 2}', (("a",), 3)) == '{"a": 1, "b": 0, "a": 3}'


@pytest.mark.parametrize(
    "before, path",
    [
        ('{"lora_parameters": null}', ("lora_parameters", "rank")),
        ('{"lora_parameters": [1]}', ("lora_parameters", "rank")),
        ('{"lora_parameters": 8}', ("lora_parameters", "rank")),
        ('{"lora_parameters": "x"}', ("lora_parameters", "rank", "deeper")),
        ('[1, 2]', ("rank",)),
        ('{"keys": ["a"]}', ("keys", 1)),
        ('{"a": 1}', (0,)),
    ],
)
def test_a_path_through_a_non_object_is_an_error(before, path):
    with pytest.raises(JsonDocError, match="cannot set"):
        load(before).set_values([(path, 1)])


def test_path_errors_name_the_path_and_the_line():
    with pytest.raises(JsonDocError) as info:
        load('{\n  "lora_parameters": null\n}').set_values([(("lora_parameters", "rank"), 8)])
    assert info.value.message == "cannot set lora_parameters.rank: lora_parameters is null, not an object"
    assert info.value.line == 2


def test_a_nonfinite_value_cannot_be_written():
    with pytest.raises(ValueError):
        load('{"scale": 1.0}').set_values([(("scale",), math.nan)])


def test_a_document_with_nan_can_be_edited_elsewhere():
    assert set_text('{"scale": NaN, "rank": 4}', (("rank",), 8)) == '{"scale": NaN, "rank": 8}'


def test_no_sets_give_the_original_text():
    text = mlx_lm_text()
    assert load(text).set_values([]) is text


def test_edits_are_sorted_and_replace_only_values():
    text = '{"a": 1, "b": {"c": 2}}'
    edits = load(text).edits([(("b", "c"), 3), (("a",), 0), (("b", "d"), 4)])
    assert [(e.start, e.end, e.text) for e in edits] == [(6, 7, "0"), (20, 21, "3"), (21, 21, ', "d": 4')]


def test_format_path():
    assert format_path(("lora_parameters", "keys", 0)) == "lora_parameters.keys[0]"


def test_format_path_quotes_keys_that_are_not_names():
    assert format_path(("", "a.b", "x")) == '[""]["a.b"].x'


def test_format_path_of_the_root():
    assert format_path(()) == "(top level)"


# -- unified diff -------------------------------------------------------------------


def test_diff_has_git_style_headers():
    diff = unified_diff("ad/adapter_config.json", '{"a": 1}\n', '{"a": 2}\n')
    assert diff.splitlines()[:2] == ["--- a/ad/adapter_config.json", "+++ b/ad/adapter_config.json"]


def test_diff_of_equal_texts_is_empty():
    assert unified_diff("x.json", "{}\n", "{}\n") == ""


def test_diff_marks_a_missing_final_newline():
    diff = unified_diff("x.json", '{"a": 1}', '{"a": 2}')
    assert diff.endswith('+{"a": 2}\n\\ No newline at end of file\n')


@pytest.mark.parametrize("before", [mlx_lm_text(), mlx_lm_text() + "\n", '{"a": 1}', '{\r\n  "a": 1\r\n}\r\n'])
def test_git_apply_turns_before_into_after(tmp_path, before):
    after = set_text(before, (("lora_parameters", "keys"), ["q"]), (("a",), 2))
    (tmp_path / "adapter_config.json").write_bytes(before.encode())
    (tmp_path / "fix.patch").write_bytes(unified_diff("adapter_config.json", before, after).encode())
    subprocess.run(["git", "apply", "--unsafe-paths", "fix.patch"], cwd=tmp_path, check=True)
    assert (tmp_path / "adapter_config.json").read_bytes() == after.encode()


# -- properties over random documents ---------------------------------------------------

KEYS = st.text(st.sampled_from("abcé_\"\\ \n\u2603"), min_size=0, max_size=4)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=16,
)
DOCUMENTS = st.dictionaries(KEYS, VALUES, max_size=5)
WHITESPACE = st.sampled_from(["", " ", "  ", "\n", "\t", "\r\n", "\n    ", " \n\t"])


@st.composite
def spelled(draw, value, style, depth=0):
    """``value`` as JSON text, in a drawn style; floats in a drawn spelling."""
    if isinstance(value, float):
        spelling = draw(st.sampled_from([repr, "{:.17e}".format, "{:E}".format, "{:.3e}".format]))
        return spelling(value)
    if not isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=style["ascii"])
    if isinstance(value, dict):
        entries = [
            json.dumps(k, ensure_ascii=style["ascii"]) + style["colon"] + draw(spelled(v, style, depth + 1))
            for k, v in value.items()
        ]
        opener, closer = "{", "}"
    else:
        entries = [draw(spelled(v, style, depth + 1)) for v in value]
        opener, closer = "[", "]"
    if style["messy"]:
        gaps = [draw(WHITESPACE) for _ in range(len(entries) + 1)]
        body = "".join(gaps[i] + (entry if i == 0 else "," + entry) for i, entry in enumerate(entries))
        return opener + body + gaps[-1] + closer
    if style["indent"] is None or not entries:
        return opener + style["comma"].join(entries) + closer
    nl, inner, outer = style["newline"], style["indent"] * (depth + 1), style["indent"] * depth
    return opener + nl + ("," + nl).join(inner + e for e in entries) + nl + outer + closer


@st.composite
def documents(draw):
    value = draw(DOCUMENTS)
    style = {
        "ascii": draw(st.booleans()),
        "indent": draw(st.sampled_from([None, "  ", "    ", "\t", " "])),
        "newline": draw(st.sampled_from(["\n", "\r\n"])),
        "colon": draw(st.sampled_from([": ", ":", " : "])),
        "comma": draw(st.sampled_from([", ", ","])),
        "messy": draw(st.booleans()),
    }
    text = draw(WHITESPACE) + draw(spelled(value, style)) + draw(WHITESPACE)
    return text


def all_paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from all_paths(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from all_paths(child, path + (index,))


def object_paths(value):
    return [p for p in all_paths(value) if isinstance(get(value, p), dict)]


def get(value, path):
    for key in path:
        value = value[key]
    return value


def assign(value, path, new):
    """The reference semantics of one set: plain Python assignment, creating missing objects."""
    if not path:
        return copy.deepcopy(new)
    value = copy.deepcopy(value)
    node = value
    for key in path[:-1]:
        if isinstance(node, dict) and isinstance(key, str):
            node = node.setdefault(key, {})
        elif isinstance(node, list) and type(key) is int and 0 <= key < len(node):
            node = node[key]
        else:
            raise LookupError(path)
    if isinstance(node, dict) and isinstance(key := path[-1], str):
        node[key] = copy.deepcopy(new)
    elif isinstance(node, list) and type(key := path[-1]) is int and 0 <= key < len(node):
        node[key] = copy.deepcopy(new)
    else:
        raise LookupError(path)
    return value


@st.composite
def sets_for(draw, value):
    """1-3 sets: existing paths replaced, new keys in existing objects, new nested objects."""
    existing = list(all_paths(value))
    objects = object_paths(value)
    choices = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["replace", "insert", "nested"]))
        if kind == "replace" or not objects:
            path = draw(st.sampled_from(existing))
        else:
            path = draw(st.sampled_from(objects)) + (draw(KEYS),)
            if kind == "nested":
                path += (draw(KEYS),)
        choices.append((path, draw(VALUES)))
    return choices


def is_prefix(a, b):
    return b[: len(a)] == a


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(text=documents())
def test_span_of_every_value_parses_to_that_value(text):
    doc = load(text)
    for path in all_paths(doc.value):
        start, end = doc.span(path)
        assert strict_equal(json.loads(text[start:end]), get(doc.value, path))


@PROPERTY_SETTINGS
@given(data=st.data(), text=documents())
def test_sets_parse_back_to_the_expected_value(data, text):
    doc = load(text)
    sets = data.draw(sets_for(doc.value))
    expected = doc.value
    try:
        for path, new in sets:
            expected = assign(expected, path, new)
    except LookupError:  # a set went through a value an earlier set replaced
        with pytest.raises(JsonDocError):
            doc.set_values(sets)
        return
    assert strict_equal(json.loads(doc.set_values(sets)), expected)


@PROPERTY_SETTINGS
@given(data=st.data(), text=documents())
def test_edits_touch_only_the_values_on_set_paths(data, text):
    doc = load(text)
    sets = data.draw(sets_for(doc.value))
    try:
        edits = doc.edits(sets)
    except JsonDocError:
        return
    set_paths = [path for path, _ in sets]
    # Values a set reaches: those it goes through, and those inside the value it sets.
    on_a_set_path = [
        p for p in all_paths(doc.value) if any(is_prefix(p, s) or is_prefix(s, p) for s in set_paths)
    ]
    previous_end = 0
    for edit in edits:
        assert previous_end <= edit.start <= edit.end
        previous_end = edit.end
        if edit.start < edit.end:  # a replaced value, whole
            assert any(doc.span(p) == (edit.start, edit.end) for p in on_a_set_path)
        else:  # an insertion, right after the last member of an object a set reaches
            objects = [p for p in on_a_set_path if isinstance(get(doc.value, p), dict) and get(doc.value, p)]
            ends = {doc.span(p + (list(get(doc.value, p))[-1],))[1] for p in objects}
            assert edit.start in ends
    # Undoing the edits restores every original byte. Undoing in order, each
    # edit sits at its original offset, since everything before it is restored.
    undone = doc.set_values(sets)
    for edit in edits:
        undone = undone[: edit.start] + text[edit.start : edit.end] + undone[edit.start + len(edit.text) :]
    assert undone == text


@PROPERTY_SETTINGS
@given(data=st.data(), text=documents())
def test_untouched_values_keep_their_spelling(data, text):
    doc = load(text)
    sets = data.draw(sets_for(doc.value))
    try:
        result = load(doc.set_values(sets))
    except JsonDocError:
        return
    set_paths = [path for path, _ in sets]
    for path in all_paths(doc.value):
        if any(is_prefix(path, s) or is_prefix(s, path) for s in set_paths):
            continue
        old, new = doc.span(path), result.span(path)
        assert text[old[0] : old[1]] == result.text[new[0] : new[1]]


@PROPERTY_SETTINGS
@given(data=st.data(), text=documents())
def test_setting_again_changes_nothing(data, text):
    doc = load(text)
    sets = data.draw(sets_for(doc.value))
    try:
        once = doc.set_values(sets)
        for path, new in sets:  # a later set may make an earlier one impossible the second time
            assign(json.loads(once), path, new)
    except (JsonDocError, LookupError):
        return
    assert load(once).set_values(sets) == once


@PROPERTY_SETTINGS
@given(text=documents())
def test_setting_every_value_to_itself_changes_nothing(text):
    doc = load(text)
    sets = [(path, get(doc.value, path)) for path in all_paths(doc.value)]
    assert doc.set_values(sets) == text


@PROPERTY_SETTINGS
@given(data=st.data(), text=documents())
def test_crlf_documents_stay_crlf(data, text):
    text = text.replace("\r\n", "\n").replace("\n", "\r\n")  # raw newlines only occur between tokens
    assume("\r\n" in text)  # a file without line breaks has no convention to follow
    doc = load(text)
    sets = data.draw(sets_for(doc.value))
    try:
        result = doc.set_values(sets)
    except JsonDocError:
        return
    assert "\n" not in result.replace("\r\n", "")


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    value=st.dictionaries(KEYS, VALUES, min_size=1, max_size=5),
    layout=st.sampled_from([{"indent": 4}, {"indent": 2}, {"indent": "\t"}, {}, {"separators": (",", ":")}]),
)
def test_a_removed_last_key_comes_back_as_json_dumps_wrote_it(data, value, layout):
    # json.dumps is the oracle: a file it wrote, minus the last key of one object,
    # plus that key set back, must be byte for byte what it wrote.
    full = json.dumps(value, **layout)
    candidates = [p for p in object_paths(value) if get(value, p) and (p or len(value) > 1)]
    assume(candidates)
    parent = data.draw(st.sampled_from(candidates))
    key = list(get(value, parent))[-1]
    stripped = copy.deepcopy(value)
    del get(stripped, parent)[key]
    text = json.dumps(stripped, **layout)
    assert set_text(text, (parent + (key,), get(value, parent)[key])) == full
