"""Property tests: inference on random layouts, and parse -> fix -> parse round trips."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from adapter_guard import jsondoc
from adapter_guard.formats.mlx_lm import run_rules
from adapter_guard.formats.shared import Inputs
from adapter_guard.engine import plan_fixes
from adapter_guard.infer import infer_adapter, infer_rank, peft_oriented

dims = st.integers(1, 4096)
ranks = st.integers(1, 256)
experts = st.integers(1, 64)


@given(dims, dims, ranks)
def test_linear_rank_is_the_shared_axis(d_in, d_out, r):
    assert infer_rank((d_in, r), (r, d_out)).rank == r


@given(experts, dims, dims, ranks)
def test_switch_rank_is_the_shared_axis(e, d_in, d_out, r):
    assert infer_rank((e, r, d_in), (e, d_out, r)).rank == r
    assert infer_rank((r * e, d_in), (e, d_out, r)).rank == r


@given(st.lists(dims, min_size=1, max_size=3), st.lists(dims, min_size=1, max_size=3))
def test_any_pair_gives_a_rank_that_both_factors_carry_or_none(a, b):
    result = infer_rank(a, b)
    if result.rank is None:
        assert result.reason
    else:
        assert result.rank in a and result.rank in b


small = st.integers(0, 12)  # small widths and ranks meet often: square, transposed and zero-sized pairs
factor = st.lists(small, min_size=1, max_size=3).map(tuple)


@given(st.lists(st.tuples(st.one_of(st.none(), factor), st.one_of(st.none(), factor)), max_size=12))
def test_the_peft_oriented_modules_infer_marks_are_exactly_those_the_predicate_finds(pairs):
    """infer_adapter marks PEFT-oriented pairs as it reads ranks (AG831 needs no second pass):
    the same modules, in tensor order, as the predicate applied to every module."""
    tensors = {}
    for i, (a, b) in enumerate(pairs):
        if a is not None:
            tensors[f"model.layers.{i}.self_attn.q_proj.lora_a"] = a
        if b is not None:
            tensors[f"model.layers.{i}.self_attn.q_proj.lora_b"] = b
    shape = infer_adapter(tensors)
    assert shape.peft_oriented == [p for p, m in shape.modules.items() if peft_oriented(m.lora_a, m.lora_b)]


FIELDS = [("num_layers",), ("fine_tune_type",), ("lora_parameters", "rank"),
          ("lora_parameters", "dropout"), ("lora_parameters", "keys")]


@st.composite
def adapters(draw):
    """A consistent adapter (tensors + complete config), then some fields deleted."""
    rank = draw(st.integers(1, 64))
    layers = draw(st.integers(1, 6))
    keys = draw(st.lists(st.sampled_from(["self_attn.q_proj", "self_attn.v_proj", "mlp.up_proj"]),
                         min_size=1, max_size=3, unique=True))
    dora = draw(st.booleans())
    tensors = {}
    for i in range(layers):
        for key in keys:
            tensors[f"model.layers.{i}.{key}.lora_a"] = (32, rank)
            tensors[f"model.layers.{i}.{key}.lora_b"] = (rank, 32)
            if dora:
                tensors[f"model.layers.{i}.{key}.m"] = (32,)
    config = {
        "fine_tune_type": "dora" if dora else "lora",
        "learning_rate": draw(st.sampled_from([1e-05, 0.0002, 3e-4])),
        "lora_parameters": {"rank": rank, "dropout": 0.0, "scale": draw(st.sampled_from([20.0, 1.0, 0.5])),
                            "keys": sorted(keys)},
        "num_layers": -1,
        "note": draw(st.text(max_size=8)),
    }
    dropped = draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=len(FIELDS)))
    for path in dropped:
        table = config
        for part in path[:-1]:
            table = table[part]
        del table[path[-1]]
    indent = draw(st.sampled_from([2, 4, "\t", None]))
    return tensors, config, json.dumps(config, indent=indent, ensure_ascii=draw(st.booleans())), dropped


@settings(max_examples=200, deadline=None)
@given(adapters())
def test_fixing_restores_every_dropped_field_and_keeps_every_other_value(adapter):
    tensors, config, text, dropped = adapter
    doc = jsondoc.load(text.encode())
    shape = infer_adapter(tensors)
    findings = run_rules(Inputs(doc.value, shape, None), "adapter_config.json")
    fixed_text, _ = plan_fixes(findings, doc, unsafe=False)
    fixed = json.loads(fixed_text)

    # Nothing lost: every value that was there is still there, spelled the same.
    for key, value in config.items():
        if key != "lora_parameters":
            assert fixed[key] == value
            assert json.dumps(value) in fixed_text or isinstance(value, str)
    for key, value in config.get("lora_parameters", {}).items():
        assert fixed["lora_parameters"][key] == value
    # Everything dropped that the tensors prove is back; keys need no restoring
    # (every module sits inside the layers, which mlx-lm's default set reaches).
    assert fixed["lora_parameters"]["rank"] == next(iter(shape.ranks))
    assert fixed["lora_parameters"]["dropout"] == 0.0
    assert fixed["num_layers"] == -1
    assert fixed["fine_tune_type"] == shape.fine_tune_type
    # And a second pass has nothing left to fix.
    again = run_rules(Inputs(fixed, shape, None), "adapter_config.json")
    assert [f for f in again if f.fix is not None] == []


name_parts = st.sampled_from(["lora_a", "lora_b", "lora_A", "lora_B", "m", "weight", "A", "B", "layers", "0", ".", "\n", ""])


@given(st.lists(st.lists(name_parts, max_size=6).map("".join), max_size=8))
def test_detection_reads_mlx_factors_from_the_names_as_their_definition_says(names):
    """adapters.safetensors holds MLX factors when some name's last part is lora_a or lora_b and
    no name holds a PEFT factor (`.lora_A.`, `.lora_B.`): the shortcuts change no answer."""
    from adapter_guard.formats.detect import _mlx_leaves
    from adapter_guard.readers import AdapterFiles, WeightsFile

    shapes = {name: (1, 1) for name in names}
    files = AdapterFiles({"adapters.safetensors": True}, {"adapters.safetensors": WeightsFile("adapters.safetensors", shapes)})
    leaves = {name.rpartition(".")[2] for name in shapes}
    defined = bool(leaves & {"lora_a", "lora_b"}) and not any(".lora_A." in n or ".lora_B." in n for n in shapes)
    assert _mlx_leaves(files) == defined
