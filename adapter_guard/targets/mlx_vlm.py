"""The mlx-vlm target profile: which mlx-vlm release loads which adapter.

mlx-vlm's loader is ``apply_lora_layers`` (``mlx_vlm.utils.load(..., adapter_path=...)`` calls
it): it reads ``adapter_config.json``, wraps the modules the config names, then
``load_weights(strict=False)`` from the model root, so a tensor whose path the model does not
have is skipped without a word. Three generations (reference adapter-formats.md §2):

- 0.1.0 - 0.5.0: the config must hold a top-level ``rank`` and is passed whole as keyword
  arguments to ``get_peft_model(model, linear_layers, rank, alpha, dropout, freeze, verbose)``.
- 0.6.0 (commit 0c40cf17) - 0.7.6: mlx-lm's schema (``fine_tune_type``, ``num_layers``,
  ``lora_parameters``), read by name; the old schema still loads; extra keys are ignored.
- 0.7.8 (the loader moved to ``trainer/peft/utils.py``; there is no 0.7.7 on PyPI) - 0.7.10:
  also full fine-tunes (``{"fine_tune_type": "full"}``), ``weights.safetensors`` and
  ``base_quantization``.

The verdicts were confirmed by running each release's own ``apply_lora_layers`` (0.5.0, 0.6.13,
0.6.14 and 0.7.6 in venvs of their own, 0.7.10 installed) on files written by mlx-vlm's save code,
PEFT and mlx-lm (tests/test_target_mlx_vlm.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..formats.detect import VLM_PREFIXES
from ..readers import MLX_WEIGHTS
from .model import Context, Profile, TargetRule, Verdict

REPO = "https://github.com/Blaizzy/mlx-vlm/blob"

#: What ``get_peft_model`` takes as keywords in mlx-vlm 0.1.0 - 0.5.0 (the config is passed as ``**config``).
OLD_KEYWORDS = frozenset({"rank", "alpha", "dropout", "freeze", "verbose"})


def _names(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(f"`{i}`" for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# -- AG940: formats mlx-vlm cannot load --------------------------------------------------


def _wrong_format(ctx: Context) -> Iterator[Verdict]:
    if ctx.format == "peft-lora":
        yield Verdict(
            "a PEFT adapter does not load: mlx-vlm reads `adapters.safetensors` and an MLX config "
            "(`lora_parameters`, or the old top-level `rank`), not `adapter_model.safetensors`; serve it with "
            "PEFT/transformers, or convert it to mlx-vlm's format (lora_a = lora_A transposed, "
            "lora_b = lora_B transposed, module paths from the VLM root)"
        )
    elif ctx.format == "mlx-lm-pre-0.19":
        yield Verdict(
            "an mlx-lm adapter from before 0.19 (`lora_layers`) does not load: its tensors are named from a "
            "text model's root (`model.layers...`), which no mlx-vlm model has, so none of them bind; "
            "serve it with mlx-lm"
        )
    elif ctx.format == "adapters-npz":
        yield Verdict(
            "`adapters.npz` does not load: mlx-vlm reads only `adapters.safetensors` with an "
            "`adapter_config.json` beside it"
        )
    else:
        yield Verdict(f"a {ctx.format} adapter does not load: mlx-vlm loads only MLX adapters")


WRONG_FORMAT = TargetRule(
    "AG940",
    "*",
    "mlx_vlm/trainer/peft/utils.py apply_lora_layers and trainer/common/model.py _read_checkpoint "
    "at v0.7.10 (adapters.safetensors or weights.safetensors, an MLX config); trainer/utils.py "
    "apply_lora_layers at v0.5.0 (adapters.safetensors, a top-level rank)",
    f"{REPO}/v0.7.10/mlx_vlm/trainer/peft/utils.py#L214-L237",
    _wrong_format,
    "a PEFT adapter, an mlx-lm adapter from before 0.19 or an `adapters.npz` does not load",
)


# -- AG941: mlx-vlm 0.5 and older read only {rank, alpha, dropout} ----------------------


def _old_schema(ctx: Context) -> Iterator[Verdict]:
    config = ctx.config
    if "rank" not in config:
        if config.get("fine_tune_type") == "full":
            what = "this is a full fine-tune (`fine_tune_type: full`), which loads from mlx-vlm 0.7.8"
        elif "lora_parameters" in config:
            what = "this config is the mlx-lm style schema (`lora_parameters`), which loads from mlx-vlm 0.6"
        else:
            what = "load it with the runtime that wrote it"
        yield Verdict(
            "the config has no top-level `rank`: mlx-vlm 0.5 and older read only the old schema (`rank`, "
            "`alpha`, `dropout`) and raise ValueError \"The adapter does not have lora params in the "
            f"config\"; {what}",
            ("lora_parameters",) if "lora_parameters" in config else None,
        )
        return
    extra = [key for key in config if key not in OLD_KEYWORDS]
    if extra:
        them = "it" if len(extra) == 1 else "them"
        yield Verdict(
            "releases up to 0.5 pass the whole config to `get_peft_model(**config)`, which takes only "
            f"`rank`, `alpha` and `dropout`: {_names(extra)} {'raises' if len(extra) == 1 else 'raise'} TypeError "
            f"(\"got an unexpected keyword argument\"); remove {them} for these releases (0.6 and newer ignore "
            f"{them}) or load with mlx-vlm 0.6+",
            (extra[0],),
        )


OLD_SCHEMA = TargetRule(
    "AG941",
    "<0.6",
    "mlx_vlm/trainer/utils.py at v0.5.0: apply_lora_layers (a top-level `rank` is required, then "
    "`get_peft_model(model, list_of_modules, **config)`) and get_peft_model (rank, alpha, dropout, "
    "freeze, verbose); unchanged since v0.1.0. v0.6.0 (commit 0c40cf17) reads the keys by name",
    f"{REPO}/v0.5.0/mlx_vlm/trainer/utils.py#L196-L228",
    _old_schema,
    "a config beyond `{rank, alpha, dropout}` is refused (ValueError without `rank`, TypeError on any other key)",
)


# -- AG942: a full fine-tune before 0.7.8 -----------------------------------------------


def _full_before_0_7_8(ctx: Context) -> Iterator[Verdict]:
    config = ctx.config
    if config.get("fine_tune_type") == "full" and "lora_parameters" not in config and "rank" not in config:
        yield Verdict(
            "a full fine-tune (`fine_tune_type: full`) without `lora_parameters` is refused with ValueError "
            "\"The adapter does not have lora params in the config\" (full checkpoints load from mlx-vlm "
            "0.7.8); load it with 0.7.8 or newer, or add an empty `\"lora_parameters\": {}`, which lets these "
            "releases load the weights (they skip the LoRA setup for `full`) and which 0.7.8+ ignores",
            ("fine_tune_type",),
        )


FULL_BEFORE_0_7_8 = TargetRule(
    "AG942",
    ">=0.6,<0.7.8",
    "mlx_vlm/trainer/utils.py apply_lora_layers at v0.6.0 - v0.7.6 (`rank` or `lora_parameters` must "
    "be in the config; _apply_lora_layers returns early for `full`); v0.7.8 trainer/peft/utils.py "
    "apply_lora_layers loads a full checkpoint with strict=True",
    f"{REPO}/v0.7.6/mlx_vlm/trainer/utils.py#L312-L343",
    _full_before_0_7_8,
    "a full fine-tune config (`fine_tune_type: full`, no `lora_parameters`) is refused",
)


# -- AG943: an mlx-lm adapter's tensors bind to nothing in a VLM ------------------------


def _text_model_tensors(ctx: Context) -> Iterator[Verdict]:
    if ctx.format != "mlx-lm":
        return
    shapes = ctx.shapes(MLX_WEIGHTS)
    if not shapes:
        return
    unrooted = sorted(name for name in shapes if not name.startswith(VLM_PREFIXES))
    if not unrooted:
        return  # e.g. unsloth's MLX adapter of a VLM: `language_model.` names, which bind
    if len(unrooted) == len(shapes):
        share = "none of the tensors bind and the adapter has no effect"
    else:
        share = f"{len(unrooted)} of {len(shapes)} tensors bind to nothing and their modules stay untrained"
    lora = ctx.config.get("lora_parameters")
    keys = lora.get("keys") if isinstance(lora, dict) else None
    relative = [k for k in keys if isinstance(k, str) and k.startswith(("self_attn.", "mlp."))] if isinstance(keys, list) else []
    how = (
        f"; the block-relative keys ({_names(relative)}) raise AttributeError even before that"
        if relative else ""
    )
    yield Verdict(
        f"the tensors are named from a text model's root ({_names(unrooted, 1)}), but every generative mlx-vlm model "
        "roots its language model at `language_model.`: mlx-vlm loads with strict=False, so "
        f"{share}, without an error{how}. This is an mlx-lm adapter: serve it "
        "with mlx-lm, or train it with mlx-vlm"
    )


TEXT_MODEL_TENSORS = TargetRule(
    "AG943",
    ">=0.6.14",
    "mlx_vlm/trainer/peft/utils.py apply_lora_layers at v0.7.10 (`load_weights(strict=False)` from the "
    "model root) and the model classes (e.g. models/llama/llama.py: `language_model.` prefix); v0.6.14 "
    "removed the mlx-lm fallback that loaded text-only models through mlx-lm (commit 738e4406)",
    f"{REPO}/v0.7.10/mlx_vlm/trainer/peft/utils.py#L214-L237",
    _text_model_tensors,
    "an mlx-lm adapter whose tensors are named `model.layers...` loads with no effect (nothing binds)",
)


PROFILE = Profile(
    name="mlx-vlm",
    display="mlx-vlm",
    package="pip install mlx-vlm",
    latest="0.7.10",
    # mlx-lm: unsloth's MLX adapters of a VLM are in that format and load (AG943 tells them apart).
    loads=frozenset({"mlx-vlm", "mlx-vlm-legacy", "mlx-lm"}),
    wrong_format=WRONG_FORMAT,
    rules=(OLD_SCHEMA, FULL_BEFORE_0_7_8, TEXT_MODEL_TENSORS),
    notes=(
        "Models mlx-vlm's loader, `apply_lora_layers` (what `mlx_vlm.utils.load(..., adapter_path=...)` "
        "calls), in its three generations: 0.1.0-0.5.0 read only `{rank, alpha, dropout}` and pass the "
        "config as keyword arguments; 0.6.0 switched to mlx-lm's schema (`lora_parameters`, full module "
        "paths in `keys`) and still reads the old one; 0.7.8 added full fine-tunes. The loader uses "
        "`load_weights(strict=False)`, so tensors named for another model (an mlx-lm adapter's "
        "`model.layers...`) load silently with no effect. Every verdict was confirmed by running the "
        "release's own `apply_lora_layers` (0.5.0, 0.6.13, 0.6.14 and 0.7.6 in venvs of their own, 0.7.10 "
        "installed) on a tiny LLaVA, on adapters written by mlx-vlm's save code (0.5.0's and 0.7.10's), "
        "PEFT and stock mlx-lm, comparing logits with the trained model. Releases before 0.1.0 cannot load adapters at all and are "
        "not modelled. 0.6.0-0.6.13 built a text-only architecture they did not implement through mlx-lm and "
        "loaded its mlx-lm adapter there (run on 0.6.13 with a GPT-J; 0.6.14 refuses that model), which a lint "
        "cannot tell from the files, so AG943 starts at 0.6.14."
    ),
)
