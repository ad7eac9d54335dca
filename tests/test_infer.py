"""Live-shape inference: every layout in the format reference, and the contradictions."""

import pytest

from adapter_guard.infer import infer_adapter, infer_num_layers, infer_rank, layer_path
from test_rules import linear_tensors


@pytest.mark.parametrize(
    ("a", "b", "rank", "layout"),
    [
        ((64, 8), (8, 32), 8, "linear"),  # LoRALinear / DoRALinear
        ((1000, 4), (4, 64), 4, "linear"),  # LoRAEmbedding (N, r) / (r, d)
        ((4, 8, 64), (4, 32, 8), 8, "switch"),  # LoRASwitchLinear, mlx-lm >= 0.28.3
        ((32, 64), (4, 32, 8), 8, "legacy-switch"),  # (r*E, in) / (E, out, r)
    ],
)
def test_rank_is_read_from_the_layout_axis(a, b, rank, layout):
    result = infer_rank(a, b)
    assert (result.rank, result.layout, result.reason) == (rank, layout, None)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((64, 8), (16, 32)),  # linear factors disagree
        ((4, 8, 64), (4, 32, 16)),  # switch factors disagree
        ((4, 8, 64), (2, 32, 8)),  # expert counts disagree
        ((30, 64), (4, 32, 8)),  # legacy: a[0] != E*r
        ((64,), (8, 32)),  # no layout has a 1-D lora_a
        ((64, 0), (0, 32)),  # zero-sized rank
    ],
)
def test_contradicted_rank_records_none_and_says_why(a, b):
    result = infer_rank(a, b)
    assert result.rank is None
    assert result.reason


def test_switch_rank_is_not_read_from_the_wrong_axis():
    # The seed's bug: reading lora_a.shape[-1] on a switch module gives input_dims.
    assert infer_rank((4, 8, 64), (4, 32, 8)).rank == 8


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("model.layers.3.self_attn.q_proj", ("model.layers", 3, "self_attn.q_proj")),
        ("language_model.model.layers.12.mlp.down_proj", ("language_model.model.layers", 12, "mlp.down_proj")),
        ("layers.0.attention.wq", ("layers", 0, "attention.wq")),
        ("model.layers.1.mlp.experts.gate_proj", ("model.layers", 1, "mlp.experts.gate_proj")),
    ],
)
def test_layer_path_splits_any_prefix(module, expected):
    located = layer_path(module)
    assert (located.prefix, located.index, located.relative) == expected


@pytest.mark.parametrize("module", ["model.embed_tokens", "lm_head", "model.layers.3"])
def test_modules_outside_layers_have_no_layer_path(module):
    assert layer_path(module) is None


def test_adapter_inference_collects_rank_keys_layers_and_type():
    shape = infer_adapter(
        {**linear_tensors([2, 3], ["self_attn.q_proj", "self_attn.v_proj"]),
         "model.embed_tokens.lora_a": (1000, 8), "model.embed_tokens.lora_b": (8, 64)}
    )
    assert shape.rank == 8
    assert shape.keys == ["self_attn.q_proj", "self_attn.v_proj", "model.embed_tokens"]
    assert shape.all_layer_indices == {2, 3}
    assert shape.fine_tune_type == "lora"
    assert not (shape.foreign or shape.unpaired or shape.contradicted)


def test_m_tensors_mean_dora():
    assert infer_adapter(linear_tensors([0], ["self_attn.q_proj"], m=True)).fine_tune_type == "dora"


def test_vlm_prefix_is_a_layer_prefix():
    shape = infer_adapter(linear_tensors([0, 1], ["self_attn.q_proj"], prefix="language_model.model.layers"))
    assert shape.layer_indices == {"language_model.model.layers": {0, 1}}
    assert shape.keys == ["self_attn.q_proj"]


def test_foreign_unpaired_and_mixed_ranks_are_recorded():
    shape = infer_adapter(
        {**linear_tensors([0], ["a"], rank=4), **linear_tensors([1], ["a"], rank=8),
         "model.layers.0.b.lora_a": (64, 4), "model.layers.0.c.lora_A.weight": (4, 64)}
    )
    assert shape.foreign == ["model.layers.0.c.lora_A.weight"]
    assert shape.unpaired == {"model.layers.0.b": "lora_a"}
    assert sorted(shape.ranks) == [4, 8]
    assert shape.rank is None


@pytest.mark.parametrize(
    ("layers", "total", "expected"),
    [
        ([0, 1, 2, 3], None, -1),  # from layer 0: all layers
        ([0, 1], None, -1),
        ([2, 3], 4, 2),  # the last two of four
        ([0, 1, 2, 3], 4, -1),
        ([2, 3], None, None),  # last two of how many? not provable
        ([1, 3], 4, None),  # not a suffix
        ([2, 4], 4, None),  # beyond the model
    ],
)
def test_num_layers_is_only_inferred_when_proven(layers, total, expected):
    shape = infer_adapter(linear_tensors(layers, ["self_attn.q_proj"]))
    value, why = infer_num_layers(shape, total)
    assert value == expected
    assert why


# -- the run-wide caches are bounded ------------------------------------------------


def test_long_module_paths_are_answered_but_never_cached():
    from adapter_guard import infer

    infer._cached_layer_path.cache_clear()
    long_path = "model.layers.3." + "x" * 100_000 + ".q_proj"
    shape = infer_adapter({f"{long_path}.lora_a": (4, 2), f"{long_path}.lora_b": (2, 4),
                           "model.layers.1.self_attn.q_proj.lora_a": (4, 2)})

    assert layer_path(long_path).index == 3 and shape.layer_indices == {"model.layers": {1, 3}}
    assert infer._cached_layer_path.cache_info().currsize == 1  # only the short path
    assert infer._cached_layer_path.cache_info().maxsize * infer.MAX_CACHED_PATH <= 8 * 1024 * 1024


def test_many_dimensioned_shapes_are_answered_but_never_cached():
    from adapter_guard import infer

    infer._cached_rank.cache_clear()
    a, b = (1,) * 5000 + (4, 2), (1,) * 5000 + (2, 4)
    assert infer_rank(a, b).rank is None
    assert infer_rank((4, 2), (2, 4)).rank == 2
    assert infer._cached_rank.cache_info().currsize == 1
