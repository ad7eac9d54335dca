"""--smoke: reload with stock mlx-lm, then check what came back, each check under its own code."""

from __future__ import annotations

import json
import socket

import builders
import mlx.core as mx
import pytest
from mlx.utils import tree_flatten
from mlx_lm.tuner.lora import LoRALinear
from mlx_lm.tuner.utils import load_adapters

from adapter_guard.mlx import reload
from adapter_guard.mlx.save import save_adapters
from adapter_guard.mlx.smoke import run_smoke, smoke_findings

LLAMA = builders.tiny_llama_config()
GPT_OSS = builders.tiny_gpt_oss_config()

LAYOUTS = {
    "llama-attention-dropout-0.1": (LLAMA, dict(num_layers=2, keys=builders.ATTENTION_KEYS, dropout=0.1)),
    "llama-all-layers": (LLAMA, dict(num_layers=-1, keys=None)),
    "gpt-oss-experts": (GPT_OSS, dict(num_layers=-1, keys=builders.GPT_OSS_EXPERT_KEYS)),
    "dora": (LLAMA, dict(num_layers=-1, keys=builders.ATTENTION_KEYS, dora=True)),
    "embedding": (LLAMA, dict(num_layers=-1, keys=builders.EMBEDDING_KEYS)),
}


@pytest.fixture(autouse=True)
def _run_in_the_repository(tmp_path, monkeypatch):
    # Without a resolved base, the checks use the lint's lookup with the working
    # directory as the repository root: a test's tmp_path is its repository.
    monkeypatch.chdir(tmp_path)


def _saved(tmp_path, base_config=LLAMA, *, model=None, **kwargs):
    """Save a live adapter with save_adapters; its config names a local base directory."""
    kwargs.setdefault("num_layers", 2)
    kwargs.setdefault("keys", builders.ATTENTION_KEYS)
    model = model or builders.make_live_adapter(base_config, **kwargs)
    base_dir = builders.write_base_dir(base_config, tmp_path / "base")
    save_adapters(model, tmp_path / "adapter", {"model": str(base_dir)})
    return tmp_path / "adapter" / "adapter_config.json"


def _smoke(config_path, **kwargs):
    return run_smoke(config_path, json.loads(config_path.read_text()), **kwargs)


def _codes(result):
    return sorted(f.code for f in result.findings)


def _only(result, code):
    [finding] = [f for f in result.findings if f.code == code]
    return finding


def _rewrite_tensors(config_path, change):
    path = config_path.parent / "adapters.safetensors"
    tensors = mx.load(str(path))
    change(tensors)
    mx.save_safetensors(str(path), tensors)


def _edit_config(config_path, change):
    config = json.loads(config_path.read_text())
    change(config)
    config_path.write_text(json.dumps(config, indent=4))


# -- a clean adapter ------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_saved_adapter_passes(tmp_path, layout):
    base_config, kwargs = LAYOUTS[layout]

    assert _smoke(_saved(tmp_path, base_config, **kwargs)).findings == []


def test_an_adapter_written_by_mlx_lm_lora_passes(tmp_path):
    model = builders.make_live_adapter(LLAMA, num_layers=2, keys=builders.ATTENTION_KEYS, dropout=0.1)
    builders.save_mlx_lm_style(
        model, tmp_path, num_layers=2, lora_parameters={"rank": 4, "scale": 2.0, "dropout": 0.1, "keys": builders.ATTENTION_KEYS}
    )
    base_dir = builders.write_base_dir(LLAMA, tmp_path / "base")

    assert _smoke(tmp_path / "adapter_config.json", base_model=base_dir).findings == []


def test_smoke_findings_is_the_cli_entry_point(tmp_path):
    config_path = _saved(tmp_path)
    _edit_config(config_path, lambda c: c["lora_parameters"].update(scale=9.0))

    findings = smoke_findings(config_path, json.loads(config_path.read_text()), base_model=None, require=False)

    assert [f.code for f in findings] == ["AG509"]
    assert findings[0].path == str(config_path)


def test_a_random_weight_base_is_said_so(tmp_path):
    result = _smoke(_saved(tmp_path))

    assert any("seeded random weights" in note for note in result.notes)
    assert result.base.has_weights is False


# -- finding the base model, offline ----------------------------------------------------------------


def _adapter_naming(tmp_path, **names):
    """A saved adapter whose config names its base only through ``names``."""
    config_path = _saved(tmp_path)
    _edit_config(config_path, lambda c: (c.pop("model"), c.update(names)))
    return config_path


def test_base_from_the_base_model_option(tmp_path):
    config_path = _adapter_naming(tmp_path)
    result = _smoke(config_path, base_model=tmp_path / "base")

    assert (result.findings, result.base.origin) == ([], "--base-model")


def test_base_from_a_local_directory_named_by_the_config(tmp_path):
    result = _smoke(_adapter_naming(tmp_path, base_model_name_or_path=str(tmp_path / "base")))

    assert (result.findings, result.base.origin) == ([], "named by the adapter config's `base_model_name_or_path`")


def test_base_relative_to_the_adapter_directory(tmp_path):
    result = _smoke(_adapter_naming(tmp_path, model="../base"))

    assert (result.findings, result.base.origin) == ([], "named by the adapter config's `model`")


def test_a_base_directory_outside_the_repository_is_never_loaded(tmp_path, monkeypatch):
    config_path = _adapter_naming(tmp_path, model=str(tmp_path / "base"))
    monkeypatch.chdir(config_path.parent)  # the repository is the adapter's directory alone

    finding = _only(_smoke(config_path), "AG501")

    assert "is a directory outside the repository" in finding.message


def _cached_snapshot(hub, repo_id, *, ref=True):
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    builders.write_base_dir(LLAMA, repo / "snapshots" / "0123abcd")
    if ref:
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("0123abcd")
    return repo / "snapshots" / "0123abcd"


@pytest.mark.parametrize("ref", [True, False], ids=["refs-main", "snapshot-only"])
def test_base_from_a_snapshot_in_the_hugging_face_cache(tmp_path, monkeypatch, ref):
    snapshot = _cached_snapshot(tmp_path / "hub", "tiny-org/tiny-llama", ref=ref)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    result = _smoke(_adapter_naming(tmp_path, model="tiny-org/tiny-llama"))

    assert result.findings == []
    assert (result.base.origin, result.base.path) == ("`tiny-org/tiny-llama` in the local Hugging Face cache", snapshot)


def test_base_resolution_never_touches_the_network(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    result = _smoke(_adapter_naming(tmp_path, model="Qwen/Qwen3-0.6b"))

    assert _codes(result) == ["AG501"]


def test_no_local_base_is_a_skip_not_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    finding = _only(_smoke(_adapter_naming(tmp_path, model="tiny-org/absent")), "AG501")

    assert finding.message.startswith(
        "smoke skipped: base model not available locally: `tiny-org/absent` is not in the local Hugging Face cache"
    )


def test_a_required_smoke_says_the_skip_fails(tmp_path):
    finding = _only(_smoke(_adapter_naming(tmp_path), require=True), "AG501")

    assert finding.message.endswith("(--require-smoke makes this a failure)")


def test_a_base_model_directory_without_config_is_named(tmp_path):
    finding = _only(_smoke(_saved(tmp_path), base_model=tmp_path / "nowhere"), "AG501")

    assert f"`{tmp_path / 'nowhere' / 'config.json'}` (--base-model) is unusable" in finding.message


def test_a_base_with_weights_is_loaded(tmp_path):
    base = builders.make_base(LLAMA, seed=3)
    base_dir = builders.write_base_dir(LLAMA, tmp_path / "real-base")
    mx.save_safetensors(str(base_dir / "model.safetensors"), dict(tree_flatten(base.parameters())))
    result = _smoke(_saved(tmp_path), base_model=base_dir)

    assert result.findings == []
    assert result.base.has_weights is True


def test_an_adapter_file_is_not_mistaken_for_base_weights(tmp_path):
    # unsloth copies the base config.json into the adapter directory.
    config_path = _saved(tmp_path)
    builders.write_base_dir(LLAMA, config_path.parent)
    result = _smoke(config_path, base_model=config_path.parent)

    assert result.findings == []
    assert result.base.has_weights is False


# -- eval() after reload ---------------------------------------------------------------------------


def test_stock_reload_leaves_dropout_active(tmp_path):
    config_path = _saved(tmp_path, dropout=0.1)
    tokens = builders.probe_tokens(LLAMA)
    model = load_adapters(builders.make_base(LLAMA), str(config_path.parent))

    assert not mx.array_equal(model(tokens), model(tokens)).item()


def test_smoke_reload_runs_in_eval_mode(tmp_path):
    assert "AG507" not in _codes(_smoke(_saved(tmp_path, dropout=0.1)))


def test_a_reload_left_in_training_mode_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(reload, "reload_adapter", lambda model, path: load_adapters(model, str(path)))
    finding = _only(_smoke(_saved(tmp_path, dropout=0.1)), "AG507")

    assert "dropout or another training-mode behaviour is still active" in finding.message


# -- a module that lost its scale ----------------------------------------------------------------------


def _from_base_ignoring_scale(linear, r=8, **kwargs):
    """A from_base that accepts the keywords but drops them."""
    output_dims, input_dims = linear.weight.shape
    module = LoRALinear(input_dims, output_dims, r=r)
    module.linear = linear
    return module


def test_a_module_that_lost_its_scale_is_reported(tmp_path, monkeypatch):
    config_path = _saved(tmp_path, scale=2.0)
    monkeypatch.setattr(LoRALinear, "from_base", staticmethod(_from_base_ignoring_scale))
    result = _smoke(config_path)

    # LoRALinear's own default scale is 20.0.
    finding = _only(result, "AG505")
    assert finding.message == (
        "scale is 20.0 after reload in model.layers.2.self_attn.q_proj and 3 more modules, but the config says 2.0"
    )
    assert "AG509" in _codes(result)


# -- what must come back from the file ---------------------------------------------------------------


def test_an_extra_tensor_fails_the_reload_and_is_named(tmp_path):
    config_path = _saved(tmp_path)
    _rewrite_tensors(config_path, lambda t: t.update({"model.norm.weight": mx.ones((32,))}))
    result = _smoke(config_path)

    assert _codes(result) == ["AG502", "AG503"]
    assert _only(result, "AG503").message == "model.norm: weight is not an adapter tensor (lora_a, lora_b, m)"


def test_a_tensor_for_a_module_that_does_not_exist_is_not_bound(tmp_path):
    config_path = _saved(tmp_path)
    _rewrite_tensors(config_path, lambda t: t.update({"model.layers.9.self_attn.q_proj.lora_a": mx.ones((32, 4))}))

    finding = _only(_smoke(config_path), "AG503")

    assert finding.message == "model.layers.9.self_attn.q_proj: lora_a is not a parameter of the reloaded model"


def test_a_module_missing_from_the_file_is_reported(tmp_path):
    config_path = _saved(tmp_path)
    gone = "model.layers.3.self_attn.v_proj"
    _rewrite_tensors(config_path, lambda t: [t.pop(f"{gone}.{leaf}") for leaf in ("lora_a", "lora_b")])

    finding = _only(_smoke(config_path), "AG510")

    assert finding.message.endswith(f"have no tensors in adapters.safetensors and run with untrained initial values: {gone}")


def test_an_embedding_left_out_of_the_keys_is_not_recreated(tmp_path):
    config_path = _saved(tmp_path, num_layers=-1, keys=builders.EMBEDDING_KEYS)
    _edit_config(config_path, lambda c: c["lora_parameters"].update(keys=["self_attn.q_proj"]))
    result = _smoke(config_path)

    assert _codes(result) == ["AG502", "AG504"]
    assert _only(result, "AG504").message.startswith("model.embed_tokens is Embedding after reload, not LoRAEmbedding")


def test_experts_left_out_of_the_keys_are_not_recreated(tmp_path):
    config_path = _saved(tmp_path, GPT_OSS, num_layers=-1, keys=builders.GPT_OSS_EXPERT_KEYS)
    _edit_config(config_path, lambda c: c["lora_parameters"].update(keys=["mlp.experts.up_proj", "mlp.experts.down_proj"]))
    result = _smoke(config_path)

    not_recreated = [f.message for f in result.findings if f.code == "AG504"]
    assert len(not_recreated) == 4  # gate_proj in each of the 4 layers
    assert not_recreated[0].startswith("model.layers.0.mlp.experts.gate_proj is SwitchLinear after reload, not LoRASwitchLinear")


def test_an_unreadable_adapter_file_fails_the_reload(tmp_path):
    config_path = _saved(tmp_path)
    (config_path.parent / "adapters.safetensors").write_bytes(b"\x00" * 16)

    finding = _only(_smoke(config_path), "AG502")

    assert finding.message.startswith("stock load_adapters failed: RuntimeError: [load_safetensors]")


# -- outputs ------------------------------------------------------------------------------------------


def _zero_lora_b(model):
    for _, module in model.named_modules():
        if "lora_b" in module:
            module.lora_b = mx.zeros_like(module.lora_b)
    return model


def test_an_untrained_adapter_is_reported(tmp_path):
    model = _zero_lora_b(builders.make_live_adapter(LLAMA, num_layers=2))
    finding = _only(_smoke(_saved(tmp_path, model=model)), "AG508")

    assert finding.message.startswith("untrained adapter: every lora_b")


def test_non_finite_outputs_are_reported(tmp_path):
    config_path = _saved(tmp_path)
    _rewrite_tensors(config_path, lambda t: t.update({"model.layers.3.self_attn.q_proj.lora_b": mx.full((4, 32), mx.nan)}))

    assert "AG506" in _codes(_smoke(config_path))


# -- never a traceback --------------------------------------------------------------------------------


def test_a_base_that_cannot_be_built_is_a_reload_failure(tmp_path):
    config_path = _saved(tmp_path)
    _edit_config(config_path, lambda c: c.update(model=str(tmp_path / "odd-base")))
    builders.write_base_dir({"model_type": "no_such_architecture"}, tmp_path / "odd-base")

    finding = _only(_smoke(config_path), "AG502")

    assert finding.message.startswith(f"could not build the base model from {tmp_path / 'odd-base'}: ")


def test_an_unexpected_error_becomes_one_line(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("first line\nsecond line")

    monkeypatch.setattr("adapter_guard.mlx.reload.find_base", explode)
    result = _smoke(_saved(tmp_path))

    assert [(f.code, f.message) for f in result.findings] == [
        ("AG502", "smoke test failed unexpectedly: RuntimeError: first line second line")
    ]
