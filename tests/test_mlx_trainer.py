"""What the stock trainer writes is a working adapter, and adapter-guard says so.

Every adapter here was written by ``python -m mlx_lm lora --train`` (see
``mlx_trainer.py``). A false alarm on one of them is the worst bug this tool
can have; stock ``mlx_lm fuse`` is the second consumer that must accept them.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mlx_lm", reason="the [mlx] extra is part of the test install")

import mlx_trainer  # noqa: E402
from adapter_guard.cli import main  # noqa: E402

NAMES = [v.name for v in mlx_trainer.VARIANTS]
#: Fused weights against base + adapter on the probe batch. W + s·BA rounds in
#: float32: measured 1e-6 on most variants, 8e-4 with all four layers adapted,
#: while training moved the logits by more than 1.
FUSE_TOLERANCE = 2e-3


def findings(capsys, *args) -> list[dict]:
    capsys.readouterr()
    main(["--output-format", "json", *map(str, args)])
    return json.loads(capsys.readouterr().out)


def max_abs_diff(a, b) -> float:
    import mlx.core as mx

    return float(mx.max(mx.abs(a - b)).item())


def test_the_corpus_holds_what_each_variant_asked_for(trainer_corpus):
    import mlx.core as mx

    kinds = {name: t.config["fine_tune_type"] for name, t in trainer_corpus.items()}
    assert kinds == {name: {"full": "full", "dora": "dora"}.get(name, "lora") for name in NAMES}
    tensors = {name: mx.load(str(t.adapter_dir / "adapters.safetensors")) for name, t in trainer_corpus.items()}
    assert any(k.endswith(".m") for k in tensors["dora"])
    assert any(k.startswith("model.embed_tokens.") for k in tensors["embedding"])
    assert any(".mlp.experts.down_proj." in k for k in tensors["gpt-oss-experts"])
    assert all(k.endswith(".weight") for k in tensors["full"])
    assert "quantization" in trainer_corpus["qlora"].base_config
    assert trainer_corpus["resume"].config["resume_adapter_file"].endswith("lora-2-layers/adapters/adapters.safetensors")
    # Trained: every lora_b moved off its zero initialisation.
    for name, found in tensors.items():
        assert all(bool(mx.any(t != 0).item()) for k, t in found.items() if k.endswith(".lora_b")), name


@pytest.mark.parametrize("name", NAMES)
def test_the_trained_adapter_changes_the_base_output(trainer_corpus, name):
    trained = trainer_corpus[name]
    base = trained.fresh_base()
    base.eval()
    assert max_abs_diff(base(trained.probe_tokens()), trained.trained_logits()) > 1e-2


@pytest.mark.parametrize("name", NAMES)
def test_lint_finds_nothing_in_what_the_trainer_wrote(trainer_corpus, capsys, name):
    assert findings(capsys, trainer_corpus[name].adapter_dir) == []


@pytest.mark.parametrize("name", NAMES)
def test_lint_with_the_base_finds_nothing_in_what_the_trainer_wrote(trainer_corpus, capsys, name):
    trained = trainer_corpus[name]
    assert findings(capsys, trained.adapter_dir, "--base-model", trained.base_dir) == []


@pytest.mark.parametrize("name", NAMES)
def test_stock_fuse_bakes_the_adapter_into_the_base(trainer_corpus, tmp_path, name):
    trained = trainer_corpus[name]
    fused = trained.fuse(tmp_path / "fused")

    assert max_abs_diff(trained.fused_logits(fused), trained.trained_logits()) < FUSE_TOLERANCE


@pytest.mark.parametrize("name", NAMES)
def test_smoke_passes_on_what_the_trainer_wrote(trainer_corpus, capsys, name):
    trained = trainer_corpus[name]
    args = ["--smoke", "--require-smoke", "--base-model", trained.base_dir, trained.adapter_dir]
    if trained.family == "gpt_oss":
        args.insert(0, "--gpt-oss")
    assert findings(capsys, *args) == []
    assert main([*map(str, args)]) == 0


def test_a_full_fine_tune_labelled_lora_is_reported_module_by_module(trainer_corpus, capsys, tmp_path):
    trained = trainer_corpus["full"]
    adapter_dir = trained.copy_to(tmp_path / "adapter")
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    config["fine_tune_type"] = "lora"
    config["lora_parameters"] = {"rank": 8, "scale": 20.0, "dropout": 0.0, "keys": ["self_attn.v_proj"]}
    (adapter_dir / "adapter_config.json").write_text(json.dumps(config, indent=4))

    found = findings(capsys, "--smoke", "--base-model", trained.base_dir, adapter_dir)

    assert "AG502" in {f["code"] for f in found}
    not_recreated = [f["message"] for f in found if f["code"] == "AG504"]
    assert len(not_recreated) == 12  # 7 linear layers in each of the 2 trained blocks, less v_proj
    assert "model.layers.3.self_attn.q_proj is Linear after reload, not LoRALinear: its weight has nowhere to go" in {
        m.split(" (is the module")[0] for m in not_recreated
    }
