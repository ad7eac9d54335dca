"""live_metadata: what a live mlx-lm model proves about its adapter config."""

from __future__ import annotations

import builders
import mlx.core as mx
import mlx.nn as nn
import pytest

from adapter_guard.mlx import live
from adapter_guard.mlx.live import live_metadata, read_dropout, read_scale

Q2 = "model.layers.2.self_attn.q_proj"
Q3 = "model.layers.3.self_attn.q_proj"
V3 = "model.layers.3.self_attn.v_proj"


def _llama(**kwargs):
    kwargs.setdefault("num_layers", 2)
    kwargs.setdefault("keys", builders.ATTENTION_KEYS)
    return builders.make_live_adapter(builders.tiny_llama_config(), **kwargs)


def _module(model, path):
    return dict(model.named_modules())[path]


class _DropoutShim(nn.Module):
    """A compatibility shim carrying both a stale ``.p`` and the real keep probability."""

    def __init__(self, p, keep=None):
        super().__init__()
        self.p = p
        if keep is not None:
            self._p_1 = keep


# -- rank -------------------------------------------------------------------------------


def test_rank_of_linear_lora():
    assert live_metadata(_llama(rank=4)).rank == 4


def test_rank_of_switch_lora_on_gpt_oss_experts():
    model = builders.make_live_adapter(
        builders.tiny_gpt_oss_config(), num_layers=-1, keys=builders.GPT_OSS_EXPERT_KEYS, rank=3
    )
    meta = live_metadata(model)

    assert meta.rank == 3
    assert {m.kind for m in meta.modules} == {"LoRASwitchLinear"}
    assert {m.layout for m in meta.modules} == {"switch"}


def test_rank_of_embedding_lora():
    model = builders.make_live_adapter(builders.tiny_llama_config(), num_layers=-1, keys=["model.embed_tokens"], rank=5)
    meta = live_metadata(model)

    assert [(m.path, m.kind, m.rank) for m in meta.modules] == [("model.embed_tokens", "LoRAEmbedding", 5)]


def test_rank_of_dora():
    meta = live_metadata(_llama(rank=6, dora=True))

    assert meta.rank == 6
    assert {m.kind for m in meta.modules} == {"DoRALinear"}


def test_rank_goes_through_the_shared_shape_helper(monkeypatch):
    seen = []

    def spy(a, b):
        seen.append((tuple(a), tuple(b)))
        return real(a, b)

    real = live.infer_rank
    monkeypatch.setattr(live, "infer_rank", spy)
    live_metadata(_llama(rank=4))

    assert ((32, 4), (4, 32)) in seen


def test_contradicted_module_is_skipped_with_a_reason_not_given_a_rank():
    model = _llama(rank=4)
    _module(model, Q3).lora_b = mx.zeros((5, 32))
    meta = live_metadata(model)

    assert Q3 in meta.skipped and "rank" in meta.skipped[Q3]
    assert next(m for m in meta.modules if m.path == Q3).rank is None
    assert meta.rank == 4  # from the other modules


def test_mixed_ranks_leave_rank_unknown():
    model = _llama(rank=4)
    module = _module(model, Q3)
    module.lora_a, module.lora_b = mx.zeros((32, 2)), mx.zeros((2, 32))
    meta = live_metadata(model)

    assert meta.rank is None
    assert "differ in rank" in meta.problems["rank"]


# -- scale and dropout -----------------------------------------------------------------------


def test_scale_from_a_python_float():
    assert live_metadata(_llama(scale=2.5)).scale == 2.5


def test_scale_from_a_one_element_array():
    model = _llama(scale=2.0)
    for path in live_metadata(model).paths:
        _module(model, path).scale = mx.array([3.0])

    assert live_metadata(model).scale == 3.0


def test_scale_array_with_many_elements_is_not_a_scale():
    model = _llama()
    module = _module(model, Q3)
    module.scale = mx.array([1.0, 2.0])

    assert read_scale(module)[0] is None
    assert Q3 in live_metadata(model).skipped


def test_dropout_reads_mlx_keep_probability():
    assert live_metadata(_llama(dropout=0.1)).dropout == 0.1


def test_dropout_prefers_keep_probability_over_a_stale_p():
    module = _module(_llama(), Q3)
    module.dropout = _DropoutShim(p=0.0, keep=0.75)

    assert read_dropout(module) == 0.25


def test_dropout_falls_back_to_p():
    module = _module(_llama(), Q3)
    module.dropout = _DropoutShim(p=0.3)

    assert read_dropout(module) == 0.3


def test_dropout_is_zero_without_a_dropout_module():
    module = _module(_llama(dropout=0.2), Q3)
    del module["dropout"]

    assert read_dropout(module) == 0.0


# -- explicit module paths ----------------------------------------------------------------------


def _two_scales():
    """q_proj modules with scale 2.0, v_proj modules with scale 7.0."""
    model = _llama(scale=2.0)
    for path in live_metadata(model).paths:
        if path.endswith("v_proj"):
            _module(model, path).scale = 7.0
    return model


def test_explicit_module_paths_select_what_is_inferred():
    meta = live_metadata(_two_scales(), module_paths=[V3])

    assert meta.scale == 7.0
    assert meta.used == [V3]


def test_explicit_module_paths_are_kept_as_given():
    assert live_metadata(_two_scales(), module_paths=[V3, Q3]).module_paths == [V3, Q3]


def test_explicit_empty_list_is_preserved_but_does_not_filter():
    meta = live_metadata(_llama(), module_paths=[])

    assert meta.module_paths == []
    assert meta.used == meta.paths
    assert meta.rank == 4


def test_without_module_paths_every_lora_module_is_listed():
    meta = live_metadata(_llama())

    assert meta.module_paths == ["model.layers.2.self_attn.q_proj", "model.layers.2.self_attn.v_proj", Q3, V3]


def test_a_selected_module_that_is_not_inferable_borrows_nothing():
    model = _llama(rank=4)
    _module(model, Q3).lora_b = mx.zeros((5, 32))
    meta = live_metadata(model, module_paths=[Q3])

    assert (meta.rank, meta.scale, meta.dropout) == (None, None, None)
    assert "none of the selected modules is inferable" in meta.problems["rank"]


def test_a_selected_path_that_is_no_lora_module_is_skipped():
    meta = live_metadata(_llama(), module_paths=["model.layers.3.mlp.up_proj", Q3])

    assert meta.skipped == {"model.layers.3.mlp.up_proj": "not a LoRA module of this model"}
    assert meta.used == [Q3]


# -- num_layers, keys, fine_tune_type -----------------------------------------------------------


def test_num_layers_is_the_suffix_length_with_layer_relative_keys():
    meta = live_metadata(_llama(num_layers=2))

    assert (meta.num_layers, meta.keys, meta.total_layers) == (2, builders.ATTENTION_KEYS, 4)


def test_num_layers_is_minus_one_when_every_layer_has_lora():
    assert live_metadata(_llama(num_layers=-1)).num_layers == -1


def test_layers_that_are_not_a_suffix_get_full_paths():
    model = builders.make_live_adapter(
        builders.tiny_llama_config(), num_layers=-1, keys=["model.layers.1.self_attn.q_proj"]
    )
    meta = live_metadata(model)

    assert (meta.num_layers, meta.keys) == (-1, ["model.layers.1.self_attn.q_proj"])


def test_modules_outside_the_layers_are_full_path_keys():
    model = builders.make_live_adapter(builders.tiny_llama_config(), num_layers=-1, keys=builders.EMBEDDING_KEYS)

    assert live_metadata(model).keys == ["self_attn.q_proj", "model.embed_tokens"]


class _VisionLanguageModel(nn.Module):
    def __init__(self, language_model):
        super().__init__()
        self.language_model = language_model


def test_layers_of_a_language_tower_are_found():
    meta = live_metadata(_VisionLanguageModel(_llama(num_layers=2)))

    assert meta.total_layers == 4
    assert meta.paths[0] == "language_model.model.layers.2.self_attn.q_proj"
    # mlx-lm's relative keys walk model.layers, not the tower: full paths load either way.
    assert meta.num_layers == -1 and meta.keys == meta.paths


@pytest.mark.parametrize(("dora", "expected"), [(False, "lora"), (True, "dora")])
def test_fine_tune_type_of_lora_and_dora(dora, expected):
    assert live_metadata(_llama(dora=dora)).fine_tune_type == expected


def test_fine_tune_type_is_full_without_lora_modules():
    meta = live_metadata(builders.make_base(builders.tiny_llama_config()))

    assert (meta.fine_tune_type, meta.modules) == ("full", [])
