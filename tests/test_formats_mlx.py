"""mlx-vlm, mlx-lm before 0.19, mlx-examples adapters.npz and unconverted PEFT factors.

Samples come from the real writers (tests/vlm_writers.py: mlx-vlm 0.7.10's own save code;
tests/legacy_writers.py: recorded mlx-lm 0.18.2 and mlx-vlm 0.5.0 output), and each verdict
is checked with the format's own loader: mlx-vlm's ``apply_lora_layers``, current mlx-lm's
``load_adapters``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import legacy_writers
import numpy as np
import pytest
import vlm_writers

from adapter_guard.engine import run
from adapter_guard.settings import Settings


def lint_dir(adapter_dir: Path, **settings):
    return run(Settings(paths=[adapter_dir], root=adapter_dir, **settings))


def codes(results, severities=("error", "warning")) -> list[str]:
    return sorted({f.code for r in results for f in r.findings if f.severity in severities and not f.fixed})


def tree_bytes(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# -- mlx-vlm ---------------------------------------------------------------------------

VLM_FORMATS = {"lora": "mlx-vlm", "dora": "mlx-vlm", "full": "mlx-vlm", "legacy_current_writer": "mlx-vlm-legacy"}


@pytest.mark.parametrize("name", VLM_FORMATS)
def test_an_mlx_vlm_adapter_is_detected_and_gets_no_error_or_warning(vlm_corpus, name):
    [result] = lint_dir(vlm_corpus[name].adapter_dir)

    assert (result.format, codes([result])) == (VLM_FORMATS[name], [])


@pytest.mark.parametrize("name", VLM_FORMATS)
def test_fix_leaves_an_mlx_vlm_adapter_byte_identical(vlm_corpus, name, tmp_path):
    adapter_dir = Path(shutil.copytree(vlm_corpus[name].adapter_dir, tmp_path / name))
    before = tree_bytes(adapter_dir)

    lint_dir(adapter_dir, fix=True, unsafe_fixes=True)

    assert tree_bytes(adapter_dir) == before


@pytest.mark.parametrize("name", ["lora", "legacy_current_writer"])
def test_an_mlx_vlm_adapter_fits_its_own_base_config(vlm_corpus, name, tmp_path):
    base = vlm_writers.write_base_config(tmp_path / "base").parent

    assert codes(lint_dir(vlm_corpus[name].adapter_dir, base_model=base)) == []


#: corruption -> (codes, what mlx-vlm's loader does).
VLM_VERDICTS = {
    # strict=False: the file's arrays replace the modules' factors and the output is still right,
    # so a wrong config rank is a warning, not an error.
    "rank_edited_4_to_8": (["AG801"], lambda o: o.reproduces_live()),
    "tensor_renamed": (["AG104"], lambda o: o.loaded and o.unbound_keys and not o.reproduces_live()),
    "mlx_lm_relative_keys": (["AG802", "AG803"], lambda o: o.error_type == "AttributeError"),
    "mlx_lm_prefix": (["AG802", "AG803"], lambda o: o.loaded and o.unbound_keys and not o.reproduces_live()),
    "no_lora_parameters": (["AG806"], lambda o: o.error_type == "ValueError"),
    "legacy_extra_key": ([], lambda o: o.reproduces_live()),
}


@pytest.mark.parametrize("corruption", VLM_VERDICTS)
def test_each_mlx_vlm_corruption_gets_the_finding_that_matches_what_mlx_vlm_does(vlm_corpus, corruption, tmp_path):
    expected, loader_does = VLM_VERDICTS[corruption]
    sample = vlm_corpus[vlm_writers.CORRUPTIONS[corruption][0]]
    adapter_dir = vlm_writers.corrupted_copy(sample, corruption, tmp_path / corruption)
    before = tree_bytes(adapter_dir)

    assert codes(lint_dir(adapter_dir, fix=True)) == expected
    assert tree_bytes(adapter_dir) == before  # no rule of another format fixed it
    assert loader_does(vlm_writers.load_sample(sample, adapter_dir))


@pytest.mark.parametrize("name", ["lora", "legacy_current_writer"])
def test_a_transposed_mlx_vlm_file_is_one_ag831_and_no_contradicted_rank(vlm_corpus, name, tmp_path):
    from safetensors.numpy import load_file, save_file

    adapter_dir = Path(shutil.copytree(vlm_corpus[name].adapter_dir, tmp_path / name))
    weights = adapter_dir / "adapters.safetensors"
    tensors = load_file(str(weights))
    save_file({k: v.T.copy() if v.ndim == 2 else v for k, v in tensors.items()}, str(weights))

    [result] = lint_dir(adapter_dir)

    found = [f.code for f in result.findings]
    assert found.count("AG831") == 1
    assert "AG105" not in found


def test_the_old_mlx_vlm_schema_never_gains_mlx_lm_keys(legacy_corpus, tmp_path):
    adapter_dir = Path(shutil.copytree(legacy_corpus["mlx_vlm_0_5_legacy"].adapter_dir, tmp_path / "old"))
    (adapter_dir / "adapter_config.json").write_text('{"rank": 4}')

    [result] = lint_dir(adapter_dir, fix=True, unsafe_fixes=True)

    assert result.format == "mlx-vlm-legacy"
    assert codes([result]) == ["AG804"]
    assert (adapter_dir / "adapter_config.json").read_text() == '{"rank": 4}'


def test_the_recorded_mlx_vlm_0_5_adapter_is_silent(legacy_corpus):
    [result] = lint_dir(legacy_corpus["mlx_vlm_0_5_legacy"].adapter_dir)

    assert (result.format, codes([result])) == ("mlx-vlm-legacy", [])


# -- mlx-lm before 0.19 ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "fine_tune_type"), [("mlx_lm_0_18_lora", "lora"), ("mlx_lm_0_18_dora", "dora")])
def test_an_mlx_lm_0_18_adapter_is_fixed_into_one_current_mlx_lm_reloads_as_the_old_one_did(
    legacy_corpus, name, fine_tune_type, tmp_path
):
    sample = legacy_corpus[name]
    adapter_dir = Path(shutil.copytree(sample.adapter_dir, tmp_path / name))
    before = json.loads((adapter_dir / "adapter_config.json").read_text())

    [linted] = lint_dir(adapter_dir)
    assert (linted.format, codes([linted])) == ("mlx-lm-pre-0.19", ["AG304", "AG811"])
    [fixed] = lint_dir(adapter_dir, fix=True)

    assert codes([fixed]) == []
    after = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert after == {**before, "num_layers": before["lora_layers"], "fine_tune_type": fine_tune_type}
    reloaded = legacy_writers.mlx_lm_reload_logits(adapter_dir)
    assert np.max(np.abs(reloaded - sample.live)) < 1e-4


def test_lora_layers_is_not_copied_when_the_tensors_sit_outside_that_many_layers(legacy_corpus, tmp_path):
    adapter_dir = Path(shutil.copytree(legacy_corpus["mlx_lm_0_18_lora"].adapter_dir, tmp_path / "a"))
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    (adapter_dir / "adapter_config.json").write_text(json.dumps({**config, "lora_layers": 1}))

    [result] = lint_dir(adapter_dir)

    [finding] = [f for f in result.findings if f.code == "AG811"]
    assert finding.fix is None and "not copied" in finding.message


# -- adapters.npz and weights without a config -------------------------------------------


def test_a_lone_adapters_npz_is_found_and_told_how_to_convert(legacy_corpus):
    [result] = lint_dir(legacy_corpus["mlx_examples_lora_npz"].adapter_dir)

    assert result.path.endswith("adapters.npz")
    assert result.format == "adapters-npz"
    assert codes([result]) == ["AG821"]
    with pytest.raises(FileNotFoundError):  # what current mlx-lm does with it
        legacy_writers.mlx_lm_reload_logits(legacy_corpus["mlx_examples_lora_npz"].adapter_dir)


@pytest.mark.parametrize("weights", ["adapters.safetensors", "adapter_model.safetensors"])
def test_weights_without_a_config_are_found_and_reported(peft_corpus, weights, tmp_path):
    adapter_dir = tmp_path / "lone"
    adapter_dir.mkdir()
    shutil.copy(peft_corpus["plain_qv"].adapter_dir / "adapter_model.safetensors", adapter_dir / weights)

    [result] = lint_dir(tmp_path)

    assert result.path == str(adapter_dir / weights)
    assert codes([result]) == ["AG007"]


def test_both_weights_names_in_one_folder_is_one_info_finding_and_never_fixed(peft_corpus, tmp_path):
    adapter_dir = Path(shutil.copytree(peft_corpus["plain_qv"].adapter_dir, tmp_path / "both"))
    shutil.copy(adapter_dir / "adapter_model.safetensors", adapter_dir / "adapters.safetensors")
    before = tree_bytes(adapter_dir)

    [result] = lint_dir(adapter_dir, fix=True, unsafe_fixes=True)

    assert result.format == "unknown"
    assert [(f.code, f.severity) for f in result.findings] == [("AG008", "info")]
    assert "adapter_model.safetensors" in result.findings[0].message and "keep only" in result.findings[0].message
    assert tree_bytes(adapter_dir) == before
