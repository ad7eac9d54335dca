"""The command line: exit codes, output formats, selection, discovery, fixes as edits.

Adapters here are written from shapes with safetensors.numpy: the lint path
needs no MLX, and these tests prove it runs without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from safetensors.numpy import save_file

from adapter_guard.cli import main
from adapter_guard.registry import RULES

COMPLETE = """\
{
    "fine_tune_type": "lora",
    "learning_rate": 1e-05,
    "lora_parameters": {
        "rank": 8,
        "dropout": 0.0,
        "scale": 20.0
    },
    "model": "caf\\u00e9/tiny",
    "num_layers": -1,
    "unknown_key": [1, 2, 3]
}
"""


def write_adapter(directory, config_text=COMPLETE, layers=(0, 1), rank=8, extra=None):
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for i in layers:
        for key in ("self_attn.q_proj", "self_attn.v_proj"):
            tensors[f"model.layers.{i}.{key}.lora_a"] = np.zeros((16, rank), np.float32)
            tensors[f"model.layers.{i}.{key}.lora_b"] = np.ones((rank, 16), np.float32)
    tensors.update(extra or {})
    save_file(tensors, str(directory / "adapters.safetensors"))
    (directory / "adapter_config.json").write_text(config_text, encoding="utf-8")
    return directory / "adapter_config.json"


def without(text, line_fragment):
    """Drop the line containing ``line_fragment`` (and a now-dangling comma)."""
    lines = text.splitlines(keepends=True)
    i = next(n for n, line in enumerate(lines) if line_fragment in line)
    del lines[i]
    if lines[i].strip().startswith("}") and lines[i - 1].rstrip().endswith(","):
        lines[i - 1] = lines[i - 1].rstrip()[:-1] + "\n"
    return "".join(lines)


def run_json(args, capsys):
    code = main([*args, "--output-format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_clean_adapter_exits_zero(tmp_path, capsys):
    write_adapter(tmp_path / "a")
    assert main([str(tmp_path)]) == 0
    assert "All checks passed" in capsys.readouterr().out


def test_findings_exit_one_and_print_code_path_and_line(tmp_path, capsys):
    path = write_adapter(tmp_path / "a", without(COMPLETE, '"rank"'))
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:4: AG202 [*] lora_parameters.rank is missing" in out


def test_json_output_lists_documented_fields(tmp_path, capsys):
    write_adapter(tmp_path / "a", without(COMPLETE, '"rank"'))
    code, findings = run_json([str(tmp_path)], capsys)
    assert code == 1
    [finding] = findings
    assert {"code", "name", "severity", "path", "message", "fixable", "fixed", "line"} <= set(finding)
    assert (finding["code"], finding["name"], finding["fixable"], finding["fixed"]) == ("AG202", "missing-rank", True, False)


def test_fix_edits_only_the_missing_value(tmp_path, capsys):
    stripped = without(COMPLETE, '"rank"')
    path = write_adapter(tmp_path / "a", stripped)
    assert main(["--fix", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"Fixing {path}" in out
    # Every other byte is identical: 1e-05, the \u escape, the unknown key, the indentation.
    assert path.read_text() == stripped.replace('"scale": 20.0\n', '"scale": 20.0,\n        "rank": 8\n')


def test_fix_is_idempotent(tmp_path):
    path = write_adapter(tmp_path / "a", without(COMPLETE, '"dropout"'))
    assert main(["--fix", str(tmp_path)]) == 0
    first = path.read_bytes()
    assert main(["--fix", str(tmp_path)]) == 0
    assert path.read_bytes() == first


def test_exit_non_zero_on_fix(tmp_path):
    write_adapter(tmp_path / "a", without(COMPLETE, '"dropout"'))
    assert main(["--fix", "--exit-non-zero-on-fix", str(tmp_path)]) == 1
    assert main(["--fix", "--exit-non-zero-on-fix", str(tmp_path)]) == 0


def test_diff_prints_and_writes_nothing(tmp_path, capsys):
    path = write_adapter(tmp_path / "a", without(COMPLETE, '"rank"'))
    before = path.read_bytes()
    assert main(["--fix", "--diff", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert '+        "rank": 8' in out and out.startswith("---")
    assert path.read_bytes() == before


def test_unsafe_fix_needs_the_flag(tmp_path):
    # Tensors of rank 16 on 16-wide modules: a rank a transposed layout would also show.
    path = write_adapter(tmp_path / "a", COMPLETE, rank=16)
    assert main(["--fix", str(tmp_path)]) == 1
    assert '"rank": 8' in path.read_text()
    assert main(["--fix", "--unsafe-fixes", str(tmp_path)]) == 0
    assert '"rank": 16' in path.read_text()


def test_select_and_ignore(tmp_path, capsys):
    write_adapter(tmp_path / "a", without(without(COMPLETE, '"rank"'), '"dropout"'))
    assert {f["code"] for f in run_json([str(tmp_path)], capsys)[1]} == {"AG202", "AG205"}
    assert {f["code"] for f in run_json([str(tmp_path), "--ignore", "AG202"], capsys)[1]} == {"AG205"}
    assert {f["code"] for f in run_json([str(tmp_path), "--select", "AG202,AG3"], capsys)[1]} == {"AG202"}


def test_pyproject_settings_apply_and_cli_overrides(tmp_path, capsys, monkeypatch):
    write_adapter(tmp_path / "a", without(COMPLETE, '"rank"'))
    (tmp_path / "pyproject.toml").write_text('[tool.adapter-guard]\nignore = ["AG202"]\n')
    monkeypatch.chdir(tmp_path)
    assert main(["."]) == 0
    assert main([".", "--ignore", "AG99"]) == 2  # unknown selector is a usage error
    capsys.readouterr()
    assert main([".", "--select", "ALL", "--ignore", "AG301"]) == 1


def test_bad_pyproject_is_a_usage_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.adapter-guard]\nselekt = ["AG2"]\n')
    monkeypatch.chdir(tmp_path)
    assert main(["."]) == 2
    assert "unknown key" in capsys.readouterr().err


def test_discovery_skips_git_venvs_node_modules_and_excludes(tmp_path, capsys):
    broken = without(COMPLETE, '"rank"')
    for where in (".git/x", "node_modules/x", "venv-like/x", "skipme/x"):
        write_adapter(tmp_path / where, broken)
    (tmp_path / "venv-like" / "pyvenv.cfg").write_text("")
    write_adapter(tmp_path / "kept", broken)
    code, findings = run_json([str(tmp_path), "--exclude", "skipme"], capsys)
    assert {f["path"] for f in findings} == {str(tmp_path / "kept" / "adapter_config.json")}


def test_explicit_path_is_honoured_unless_force_exclude(tmp_path, capsys):
    path = write_adapter(tmp_path / "skipme", without(COMPLETE, '"rank"'))
    assert main([str(path), "--exclude", "skipme"]) == 1
    assert main([str(path), "--exclude", "skipme", "--force-exclude"]) == 0


def test_weights_path_checks_the_config_beside_it(tmp_path):
    write_adapter(tmp_path / "a", without(COMPLETE, '"rank"'))
    assert main([str(tmp_path / "a" / "adapters.safetensors")]) == 1


def test_list_rules_and_explain_come_from_the_registry(capsys):
    assert main(["--list-rules"]) == 0
    out = capsys.readouterr().out
    assert all(code in out for code in RULES)
    assert main(["--explain", "ag204"]) == 0
    assert RULES["AG204"].explanation in capsys.readouterr().out
    assert main(["--explain", "AG999"]) == 2


def test_missing_path_is_a_finding_not_a_traceback(tmp_path, capsys):
    code, findings = run_json([str(tmp_path / "nope" / "adapter_config.json")], capsys)
    assert (code, [f["code"] for f in findings]) == (1, ["AG005"])


def test_internal_error_is_one_line_unless_verbose(tmp_path, capsys, monkeypatch):
    write_adapter(tmp_path / "a")

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("adapter_guard.engine.process", boom)
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "adapter-guard: internal error: RuntimeError: boom (run with --verbose for the traceback)"
    with pytest.raises(RuntimeError):
        main([str(tmp_path), "--verbose"])


def test_lint_path_imports_no_mlx_torch_peft_or_github(tmp_path):
    write_adapter(tmp_path / "a", without(COMPLETE, '"rank"'))
    code = textwrap.dedent(
        f"""
        import sys
        from adapter_guard.cli import main
        main([{str(tmp_path)!r}, "--output-format", "json"])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("mlx", "mlx_lm", "mlx_vlm", "github", "numpy", "torch", "peft", "transformers"))
        print(heavy, file=sys.stderr)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stderr.strip() == "[]"


def test_version(capsys):
    from adapter_guard import __version__

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
