"""--output-format sarif: a SARIF 2.1.0 log, validated against the official schema.

tests/data/sarif-schema-2.1.0.json is the OASIS SARIF 2.1.0 (errata01) schema,
byte-identical to Schemata/sarif-schema-2.1.0.json in the oasis-tcs/sarif-spec
repository (sha256 c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e),
vendored so the test runs offline.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from adapter_guard.findings import FileResult
from adapter_guard.reporters.sarif import render
from adapter_guard.registry import RULES

from github_results import finding

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


#: RFC 3986 characters of a relative reference; the "uri-reference" format is
#: not checked by jsonschema without an extra package, so check it here.
URI_REFERENCE = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*")


def sarif(results, *, fix_mode=False) -> dict:
    log = json.loads(render(results, fix_mode=fix_mode))
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(log)
    return log


def test_a_log_with_findings_is_valid_sarif_2_1_0():
    log = sarif([FileResult("adapters/a/adapter_config.json", [finding(), finding("AG304", message="x", fix=None)])])
    assert log["version"] == "2.1.0"
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["AG205", "AG304"]


def test_a_clean_log_is_valid_with_no_results():
    log = sarif([FileResult("adapters/a/adapter_config.json")])
    assert log["runs"][0]["results"] == []


def test_the_schema_rejects_a_broken_log():
    # The oracle must be able to fail: a result without a message is not SARIF.
    log = json.loads(render([FileResult("c.json", [finding(path="c.json")])], fix_mode=False))
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SCHEMA).validate(log)


def test_rule_metadata_comes_from_the_registry():
    rules = sarif([])["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    descriptor = rules[list(RULES).index("AG205")]
    rule = RULES["AG205"]
    assert descriptor["name"] == rule.name
    assert descriptor["shortDescription"]["text"] == rule.summary
    assert descriptor["fullDescription"]["text"] == rule.explanation
    assert descriptor["helpUri"] == rule.url
    assert descriptor["defaultConfiguration"]["level"] == "error"


def test_results_point_at_the_rule_the_file_and_the_line():
    result = sarif([FileResult("adapters/a/adapter_config.json", [finding(line=5)])])["runs"][0]["results"][0]
    assert result["ruleIndex"] == list(RULES).index("AG205")
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "adapters/a/adapter_config.json", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 5}


def test_severity_maps_to_sarif_levels():
    results = [FileResult("c.json", [finding("AG205", "c.json", "e"), finding("AG304", "c.json", "w"),
                                     finding("AG501", "c.json", "i", fix=None)])]
    assert [r["level"] for r in sarif(results)["runs"][0]["results"]] == ["error", "warning", "note"]


def test_a_hostile_file_name_is_percent_encoded():
    path = "adapters/we ird%#?<img>/adapter_config.json"
    result = sarif([FileResult(path, [finding(path=path)])])["runs"][0]["results"][0]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "adapters/we%20ird%25%23%3F%3Cimg%3E/adapter_config.json"
    assert URI_REFERENCE.fullmatch(uri)


def test_fixed_findings_are_left_out():
    log = sarif([FileResult("c.json", [finding(path="c.json", fixed=True)], written=True)], fix_mode=True)
    assert log["runs"][0]["results"] == []


def test_findings_without_a_file_and_failed_writes_become_notifications():
    results = [FileResult("<built-in gpt-oss>", [finding("AG601", "<built-in gpt-oss>", "drift", fix=None)]),
               FileResult("c.json", write_error="read-only file system")]
    invocation = sarif(results)["runs"][0]["invocations"][0]
    notes = invocation["toolExecutionNotifications"]
    assert [n["message"]["text"] for n in notes] == ["<built-in gpt-oss>: drift",
                                                      "could not write the fix: read-only file system"]
    assert notes[0]["associatedRule"]["id"] == "AG601"


def test_a_log_with_adapter_formats_is_valid_and_lists_each_adapter_once():
    results = [
        FileResult("adapters/a/adapter_config.json", [finding()], format="peft-lora"),
        FileResult("adapters/b/adapter_config.json", format="mlx-vlm"),
    ]
    run = sarif(results)["runs"][0]
    assert [a["properties"]["adapterFormat"] for a in run["artifacts"]] == ["peft-lora", "mlx-vlm"]
    assert run["results"][0]["properties"]["adapterFormat"] == "peft-lora"
