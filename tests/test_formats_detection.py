"""Format detection, converted (transposed) MLX files, base widths, mixed trees and the reports.

The oracles are the real loaders: stock mlx-lm ``load_adapters`` for MLX files, and the real
writers' samples for what a clean adapter of each format looks like.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import builders
import peft_writers
import pytest
import vlm_writers
from hypothesis import given, settings as hypothesis_settings, strategies as st

from adapter_guard.cli import main
from adapter_guard.engine import run
from adapter_guard.formats.detect import AdapterFormat, detect
from adapter_guard.readers import AdapterFiles, WeightsFile
from adapter_guard.settings import Settings


def lint_dir(path: Path, **settings):
    return run(Settings(paths=[path], root=path, **settings))


def codes(results, severities=("error", "warning")) -> list[str]:
    return sorted({f.code for r in results for f in r.findings if f.severity in severities and not f.fixed})


def tree_bytes(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def mlx_load(adapter_dir: Path, base_config: dict):
    from mlx_lm.tuner.utils import load_adapters

    return load_adapters(builders.make_base(base_config), str(adapter_dir))


# -- a PEFT -> MLX conversion that forgot to transpose -----------------------------------


def transposed_copy(built, dest: Path) -> Path:
    """The builder's adapter with every factor in PEFT's orientation, and its rank removed from the config."""
    from safetensors.numpy import load_file, save_file

    adapter_dir = Path(shutil.copytree(built.adapter_dir, dest))
    tensors = load_file(str(adapter_dir / "adapters.safetensors"))
    save_file({k: v.T.copy() for k, v in tensors.items()}, str(adapter_dir / "adapters.safetensors"))
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    del config["lora_parameters"]["rank"]
    (adapter_dir / "adapter_config.json").write_text(json.dumps(config, indent=4))
    return adapter_dir


def test_an_unconverted_peft_orientation_is_reported_and_no_rank_is_written(tmp_path):
    built = builders.llama_attention_adapter(tmp_path / "built", num_layers=4)  # q_proj is square: 32 x 32
    adapter_dir = transposed_copy(built, tmp_path / "converted")

    [result] = lint_dir(adapter_dir, fix=True, unsafe_fixes=True)

    assert "AG831" in codes([result])
    assert "rank" not in json.loads((adapter_dir / "adapter_config.json").read_text())["lora_parameters"]
    assert result.format == "mlx-lm"
    # What stock mlx-lm does with the file once a rank is given: it refuses the factors.
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    config["lora_parameters"]["rank"] = 4
    (adapter_dir / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError):
        mlx_load(adapter_dir, built.base_config)


def test_a_transposed_module_is_reported_once_by_ag831_and_not_again_as_a_contradicted_rank(tmp_path):
    built = builders.llama_attention_adapter(tmp_path / "built", num_layers=4)
    adapter_dir = transposed_copy(built, tmp_path / "converted")

    [result] = lint_dir(adapter_dir)

    found = [f.code for f in result.findings]
    assert found.count("AG831") == 1
    assert "AG105" not in found


def test_a_correctly_oriented_square_module_is_not_taken_for_a_transposed_one(tmp_path):
    built = builders.llama_attention_adapter(tmp_path / "built", num_layers=4)

    assert "AG831" not in codes(lint_dir(built.adapter_dir))


# -- widths against the base config.json ----------------------------------------------


def test_an_mlx_lm_adapter_for_another_base_is_an_error_at_lint_time(tmp_path):
    built = builders.llama_attention_adapter(tmp_path / "built", num_layers=4)
    other = builders.tiny_llama_config(hidden_size=64, intermediate_size=128)
    base = builders.write_base_dir(other, tmp_path / "other-base")

    assert codes(lint_dir(built.adapter_dir, base_model=base)) == ["AG108"]
    with pytest.raises(ValueError):  # stock mlx-lm agrees: the shapes do not fit
        mlx_load(built.adapter_dir, other)


def test_an_mlx_lm_adapter_fits_its_own_base(tmp_path):
    built = builders.embedding_adapter(tmp_path / "built")
    base = builders.write_base_dir(built.base_config, tmp_path / "base")

    assert codes(lint_dir(built.adapter_dir, base_model=base)) == []


def test_a_peft_adapter_for_another_base_is_an_error_at_lint_time(peft_corpus, tmp_path):
    base = builders.write_base_dir(builders.tiny_llama_config(hidden_size=32), tmp_path / "other-base")

    assert codes(lint_dir(peft_corpus["plain_qv"].adapter_dir, base_model=base)) == ["AG108"]


# -- a tree of every format ---------------------------------------------------------------


def test_fix_on_a_mixed_tree_changes_only_what_a_rule_of_each_files_own_format_fixes(
    peft_corpus, vlm_corpus, legacy_corpus, tmp_path
):
    tree = tmp_path / "repo"
    for name in ("plain_qv", "dora", "rank_alpha_pattern", "embedding", "bin_fallback"):
        shutil.copytree(peft_corpus[name].adapter_dir, tree / "peft" / name)
    for name in vlm_writers.CASES:
        shutil.copytree(vlm_corpus[name].adapter_dir, tree / "vlm" / name)
    for name in legacy_writers_cases():
        shutil.copytree(legacy_corpus[name].adapter_dir, tree / "legacy" / name)
    builders.llama_attention_adapter(tree / "mlx" / "clean")
    broken_peft = peft_writers.corrupted_copy(peft_corpus["dora"], "use_dora_true_to_false", tree / "peft" / "dora-off")
    before = tree_bytes(tree)

    results = lint_dir(tree, fix=True)

    changed = {k for k in before if tree_bytes(tree).get(k) != before[k]}
    assert changed == {
        "peft/dora-off/adapter_config.json",  # AG710: use_dora
        "legacy/mlx_lm_0_18_lora/adapter_config.json",  # AG811 + AG304
        "legacy/mlx_lm_0_18_dora/adapter_config.json",
    }
    assert json.loads((broken_peft / "adapter_config.json").read_text())["use_dora"] is True
    formats = {Path(r.path).parent.name: r.format for r in results}
    assert formats["dora-off"] == "peft-lora" and formats["mlx_lm_0_18_lora"] == "mlx-lm-pre-0.19"
    assert formats["legacy_current_writer"] == "mlx-vlm-legacy" and formats["clean"] == "mlx-lm"
    assert formats["mlx_examples_lora_npz"] == "adapters-npz"


def legacy_writers_cases():
    import legacy_writers

    return legacy_writers.CASES


# -- detection as a property: optional keys never change the verdict ----------------------

PEFT_OPTIONAL = ["alpha_pattern", "rank_pattern", "bias", "lora_dropout", "fan_in_fan_out", "inference_mode",
                 "init_lora_weights", "layers_pattern", "layers_to_transform", "modules_to_save", "revision",
                 "task_type", "use_dora", "use_rslora", "peft_version", "base_model_name_or_path", "exclude_modules",
                 "target_parameters", "trainable_token_indices", "megatron_config", "loftq_config", "auto_mapping",
                 "lora_alpha", "r", "target_modules", "lora_bias", "layer_replication"]  # fmt: skip


def peft_files() -> AdapterFiles:
    shapes = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": (8, 64),
              "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": (64, 8)}  # fmt: skip
    return AdapterFiles({"adapter_model.safetensors": True}, {"adapter_model.safetensors": WeightsFile("adapter_model.safetensors", shapes)})


def mlx_files(prefix: str = "model.") -> AdapterFiles:
    shapes = {f"{prefix}layers.0.self_attn.q_proj.lora_a": (64, 8), f"{prefix}layers.0.self_attn.q_proj.lora_b": (8, 64)}
    return AdapterFiles({"adapters.safetensors": True}, {"adapters.safetensors": WeightsFile("adapters.safetensors", shapes)})


FULL_PEFT = {"peft_type": "LORA", **{k: None for k in PEFT_OPTIONAL}, "r": 8, "lora_alpha": 16,
             "target_modules": ["q_proj"]}  # fmt: skip


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.sets(st.sampled_from(PEFT_OPTIONAL)))
def test_a_peft_config_stays_peft_with_any_subset_of_its_optional_keys(dropped):
    config = {k: v for k, v in FULL_PEFT.items() if k not in dropped}

    assert detect(config, peft_files()).format is AdapterFormat.PEFT_LORA


MLX_LM_OPTIONAL = ["fine_tune_type", "num_layers", "model", "data", "iters", "batch_size", "learning_rate",
                   "seed", "adapter_path", "train", "peft_type", "unsloth_mlx_lora_module_paths",
                   "base_model_name_or_path", "rank", "scale", "dropout", "lora_parameters"]  # fmt: skip
FULL_MLX_LM = {k: 1 for k in MLX_LM_OPTIONAL} | {
    "fine_tune_type": "lora", "num_layers": 16, "peft_type": "LORA", "model": "m",
    "unsloth_mlx_lora_module_paths": ["model.layers.0.self_attn.q_proj"],
    "lora_parameters": {"rank": 8, "scale": 2.0, "dropout": 0.0},
}  # fmt: skip


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.sets(st.sampled_from(MLX_LM_OPTIONAL)))
def test_an_mlx_lm_config_stays_mlx_lm_with_any_subset_of_its_optional_keys(dropped):
    config = {k: v for k, v in FULL_MLX_LM.items() if k not in dropped}

    assert detect(config, mlx_files()).format is AdapterFormat.MLX_LM


VLM_FULL = {"fine_tune_type": "lora", "num_layers": -1, "base_quantization": {},
            "lora_parameters": {"rank": 8, "scale": 2.0, "dropout": 0.0,
                                "keys": ["language_model.model.layers.0.self_attn.q_proj"]}}  # fmt: skip


@hypothesis_settings(max_examples=100, deadline=None)
@given(st.sets(st.sampled_from(["fine_tune_type", "num_layers", "base_quantization", "lora_parameters"])),
       st.sets(st.sampled_from(["rank", "scale", "dropout", "keys"])))
def test_an_mlx_vlm_config_stays_mlx_vlm_with_any_subset_of_its_optional_keys(dropped, dropped_lora):
    config = {k: v for k, v in VLM_FULL.items() if k not in dropped}
    if "lora_parameters" in config:
        config["lora_parameters"] = {k: v for k, v in config["lora_parameters"].items() if k not in dropped_lora}

    assert detect(config, mlx_files("language_model.model.")).format is AdapterFormat.MLX_VLM


@hypothesis_settings(max_examples=50, deadline=None)
@given(st.sets(st.sampled_from(["alpha", "dropout"])))
def test_an_old_mlx_vlm_config_stays_old_mlx_vlm_with_any_subset_of_its_optional_keys(dropped):
    config = {k: v for k, v in {"rank": 4, "alpha": 8.0, "dropout": 0.0}.items() if k not in dropped}
    files = AdapterFiles({"adapters.safetensors": True}, {"adapters.safetensors": WeightsFile(
        "adapters.safetensors", {"language_model.model.layers.0.self_attn.q_proj.A": (64, 4),
                                 "language_model.model.layers.0.self_attn.q_proj.B": (4, 64)})})  # fmt: skip

    assert detect(config, files).format is AdapterFormat.MLX_VLM_LEGACY


@hypothesis_settings(max_examples=100, deadline=None)
@given(st.sets(st.sampled_from(["lora_parameters", "use_dora", "model", "iters", "seed"])))
def test_an_mlx_lm_0_18_config_stays_legacy_with_any_subset_of_its_optional_keys(dropped):
    full = {"lora_layers": 16, "lora_parameters": {"rank": 8, "alpha": 16, "scale": 10.0, "dropout": 0.0},
            "use_dora": False, "model": "m", "iters": 5, "seed": 0}  # fmt: skip
    config = {k: v for k, v in full.items() if k not in dropped}

    assert detect(config, mlx_files()).format is AdapterFormat.MLX_LM_LEGACY


def test_another_peft_method_gets_one_info_finding_and_no_lora_rule(peft_corpus, tmp_path):
    adapter_dir = peft_writers.corrupted_copy(peft_corpus["plain_qv"], "r_edited_8_to_16", tmp_path / "ada")
    peft_writers.edit_config(peft_type="ADALORA")(adapter_dir)

    [result] = lint_dir(adapter_dir)

    assert result.format == "peft-other"
    assert [(f.code, f.severity) for f in result.findings] == [("AG009", "info")]


# -- the format in every report ----------------------------------------------------------


def test_json_output_carries_each_findings_adapter_format(peft_corpus, tmp_path, capsys):
    adapter_dir = peft_writers.corrupted_copy(peft_corpus["plain_qv"], "r_edited_8_to_16", tmp_path / "a")

    main([str(adapter_dir), "--output-format", "json"])

    [finding] = json.loads(capsys.readouterr().out)
    assert (finding["code"], finding["format"]) == ("AG705", "peft-lora")


def test_sarif_output_lists_every_adapter_with_its_format(peft_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(peft_corpus["plain_qv"].adapter_dir, tmp_path / "clean")

    main(["clean", "--output-format", "sarif"])

    run_log = json.loads(capsys.readouterr().out)["runs"][0]
    assert [(a["location"]["uri"], a["properties"]["adapterFormat"]) for a in run_log["artifacts"]] == [
        ("clean/adapter_config.json", "peft-lora")
    ]


def test_verbose_text_output_names_each_adapters_format(peft_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(peft_corpus["plain_qv"].adapter_dir, tmp_path / "clean")

    main(["clean", "--verbose"])

    assert "clean/adapter_config.json: format: peft-lora\n" in capsys.readouterr().out


def test_plain_text_output_does_not_name_the_format(peft_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(peft_corpus["plain_qv"].adapter_dir, tmp_path / "clean")

    main(["clean"])

    assert "format" not in capsys.readouterr().out
