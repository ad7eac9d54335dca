"""The core claim, proven against the real consumer.

Each adapter is built by stock mlx-lm from a live model. Its config is then
stripped of fields, ``adapter-guard --fix`` repairs it, and stock
``mlx_lm.tuner.utils.load_adapters`` on a fresh base must reproduce the live
model's eval-mode logits.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mlx_lm", reason="the [mlx] extra is part of the test install")

import builders  # noqa: E402
from adapter_guard.cli import main  # noqa: E402

TOLERANCE = 1e-4


def load(adapter_dir):
    return json.loads((adapter_dir / "adapter_config.json").read_text())


def strip(adapter_dir, *paths):
    """Delete JSON paths like "num_layers" or "lora_parameters.rank" from the saved config."""
    config = load(adapter_dir)
    for path in paths:
        *parents, last = path.split(".")
        table = config
        for p in parents:
            table = table[p]
        del table[last]
    (adapter_dir / "adapter_config.json").write_text(json.dumps(config, indent=4, sort_keys=True))


def assert_reload_matches_live(built):
    tokens = builders.probe_tokens(built.base_config)
    live = builders.reference_logits(built.model, tokens)
    reloaded = builders.fresh_reload_logits(built.base_config, built.adapter_dir, tokens)
    assert builders.max_abs_diff(live, reloaded) < TOLERANCE


LAYOUTS = {
    "llama-attention": lambda d: builders.llama_attention_adapter(d, dropout=0.1, num_layers=2),
    "llama-all-layers": builders.llama_all_layers_adapter,
    "gpt-oss-experts": builders.gpt_oss_experts_adapter,
    "dora": builders.dora_adapter,
    "embedding": builders.embedding_adapter,
}

# (layout, fields to strip, extra CLI arguments)
CASES = [
    ("llama-attention", ["lora_parameters.rank"], []),
    ("llama-attention", ["lora_parameters.dropout"], []),
    ("llama-attention", ["num_layers"], ["--base-model", "{base}"]),
    ("llama-attention", ["num_layers", "lora_parameters.rank", "lora_parameters.dropout"], ["--base-model", "{base}"]),
    ("llama-all-layers", ["num_layers", "lora_parameters.rank"], []),
    ("gpt-oss-experts", ["lora_parameters.rank", "lora_parameters.dropout", "num_layers"], []),
    ("dora", ["fine_tune_type", "lora_parameters.rank"], []),
    ("embedding", ["lora_parameters.keys", "lora_parameters.rank"], []),
]


@pytest.mark.parametrize(("layout", "stripped", "args"), CASES, ids=lambda v: ",".join(v) if isinstance(v, list) else v)
def test_fix_restores_a_config_stock_mlx_lm_reloads_to_the_live_logits(tmp_path, layout, stripped, args):
    built = LAYOUTS[layout](tmp_path / "adapter")
    base = builders.write_base_dir(built.base_config, tmp_path / "base")
    strip(built.adapter_dir, *stripped)

    assert main(["--fix", str(built.adapter_dir), *[a.format(base=base) for a in args]]) == 0

    assert_reload_matches_live(built)
    # Idempotent: a second run changes nothing and passes.
    before = (built.adapter_dir / "adapter_config.json").read_bytes()
    assert main(["--fix", str(built.adapter_dir), *[a.format(base=base) for a in args]]) == 0
    assert (built.adapter_dir / "adapter_config.json").read_bytes() == before


def test_a_stripped_config_really_breaks_stock_mlx_lm(tmp_path):
    # The oracle can fail: without the fix, the same reload raises.
    built = builders.llama_attention_adapter(tmp_path / "adapter")
    strip(built.adapter_dir, "num_layers")
    with pytest.raises(AttributeError, match="num_layers"):
        builders.fresh_reload_logits(built.base_config, built.adapter_dir, builders.probe_tokens(built.base_config))


def test_a_wrong_rank_the_tensors_settle_reloads_after_one_fix(tmp_path):
    built = builders.llama_attention_adapter(tmp_path / "adapter")
    config = load(built.adapter_dir)
    config["lora_parameters"]["rank"] = 16
    (built.adapter_dir / "adapter_config.json").write_text(json.dumps(config, indent=4))
    tokens = builders.probe_tokens(built.base_config)
    with pytest.raises(ValueError):  # as written, stock mlx-lm refuses the tensors
        builders.fresh_reload_logits(built.base_config, built.adapter_dir, tokens)

    # Every module has rank 4, below its widths: the only value that can load.
    assert main(["--fix", str(built.adapter_dir)]) == 0
    assert load(built.adapter_dir)["lora_parameters"]["rank"] == 4
    assert_reload_matches_live(built)


def test_a_mirrored_scale_is_copied_and_reloads(tmp_path):
    built = builders.llama_attention_adapter(tmp_path / "adapter")
    config = load(built.adapter_dir)
    config["scale"] = config["lora_parameters"].pop("scale")
    (built.adapter_dir / "adapter_config.json").write_text(json.dumps(config, indent=4))

    assert main(["--fix", str(built.adapter_dir)]) == 0
    assert_reload_matches_live(built)


def test_an_unprovable_scale_is_reported_and_not_invented(tmp_path):
    built = builders.llama_attention_adapter(tmp_path / "adapter")
    strip(built.adapter_dir, "lora_parameters.scale", "lora_parameters.rank")

    assert main(["--fix", str(built.adapter_dir)]) == 1
    lora = load(built.adapter_dir)["lora_parameters"]
    assert "scale" not in lora
    assert lora["rank"] == built.lora_parameters["rank"]  # what is proven is still fixed


def test_num_layers_of_a_suffix_is_not_guessed_without_the_base(tmp_path):
    built = builders.llama_attention_adapter(tmp_path / "adapter", num_layers=2)
    strip(built.adapter_dir, "num_layers")

    assert main(["--fix", str(built.adapter_dir)]) == 1
    assert "num_layers" not in load(built.adapter_dir)


def test_a_complete_mlx_lm_lora_config_has_no_findings(tmp_path, capsys):
    for name, make in LAYOUTS.items():
        make(tmp_path / name)
    assert main([str(tmp_path)]) == 0, capsys.readouterr().out


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (builders.legacy_switch_adapter, {"rank": 4}),
        (builders.vlm_prefixed_adapter, {"rank": 4}),
    ],
)
def test_header_only_layouts_get_the_inferred_rank(tmp_path, make, expected):
    adapter_dir = make(tmp_path / "adapter")
    strip(adapter_dir, "lora_parameters.rank")
    assert main(["--fix", str(adapter_dir)]) == 0
    assert load(adapter_dir)["lora_parameters"]["rank"] == expected["rank"]


SAVED_LAYOUTS = {
    **builders.live_layouts(),
    "llama-all-layers": (builders.tiny_llama_config(), dict(num_layers=-1, keys=None)),
}


@pytest.mark.parametrize("layout", SAVED_LAYOUTS)
def test_linear_to_lora_layers_plus_save_adapters_lints_clean(tmp_path, layout, capsys):
    from adapter_guard.mlx.save import save_adapters

    base_config, kwargs = SAVED_LAYOUTS[layout]
    model = builders.make_live_adapter(base_config, **kwargs)
    save_adapters(model, tmp_path / "adapter")

    assert main([str(tmp_path / "adapter")]) == 0, capsys.readouterr().out
    tokens = builders.probe_tokens(base_config)
    reloaded = builders.fresh_reload_logits(base_config, tmp_path / "adapter", tokens)
    assert builders.max_abs_diff(builders.reference_logits(model, tokens), reloaded) < TOLERANCE
