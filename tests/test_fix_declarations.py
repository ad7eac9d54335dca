"""What a rule declares about its fix is what it emits, over the whole fixture corpus.

The corpus is every example adapter, every builder in tests/builders.py
(written by stock mlx-lm), each also with fields dropped, nulled, contradicted
or mirrored, its weights removed, or renamed to mlx-lm's pre-0.19 schema; and
every real-PEFT sample (tests/peft_writers.py) with every corruption of
``peft_writers.CORRUPTIONS``, all linted with runtime targets set too. Together every fixable rule fires. For each finding the lint emits:
a fix only on a rule that declares one, with a declared applicability; and a
fix on every finding of a rule that declares one always.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

import builders
import peft_writers
from adapter_guard.engine import lint
from adapter_guard.registry import RULES, Availability
from adapter_guard.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "adapters"


def _variants(config: dict) -> dict[str, dict]:
    """The config as written, and edited so each fixable rule has something to fix."""
    out = {"as-written": config}

    def edit(name, change):
        edited = copy.deepcopy(config)
        change(edited)
        out[name] = edited

    for key in ("lora_parameters", "num_layers", "fine_tune_type"):
        edit(f"no-{key}", lambda c, k=key: c.pop(k, None))
    if isinstance(config.get("lora_parameters"), dict):
        for key in ("rank", "scale", "dropout", "keys"):
            edit(f"no-lora_parameters.{key}", lambda c, k=key: c["lora_parameters"].pop(k, None))
        edit("null-lora_parameters", lambda c: c.update(lora_parameters=None))
        rank = config["lora_parameters"].get("rank", 4)
        edit("wrong-rank", lambda c: c["lora_parameters"].update(rank=rank + 1))
        edit("stale-rank-mirror", lambda c: c.update(rank=rank + 1))
        edit("mirrors-no-scale", lambda c: (c.update(scale=2.0, dropout=0.05, rank=rank), c["lora_parameters"].pop("scale", None)))
        edit("alpha-no-scale", lambda c: (c.update(lora_alpha=16), c["lora_parameters"].pop("scale", None)))
        edit("alpha-no-lora_parameters", lambda c: (c.update(lora_alpha=16), c.pop("lora_parameters")))
        # Without weights nothing is provable: the "sometimes" rules emit no fix.
        edit("no-weights-no-lora_parameters.rank", lambda c: c["lora_parameters"].pop("rank", None))
        if "num_layers" in config:  # mlx-lm before 0.19 wrote lora_layers
            edit("legacy-lora_layers", lambda c: c.update(lora_layers=c.pop("num_layers")))
            edit("legacy-lora_layers-1", lambda c: (c.update(lora_layers=1), c.pop("num_layers")))
        edit(
            "unsloth-paths-no-keys",
            lambda c: (c.update(unsloth_mlx_lora_module_paths=["model.embed_tokens"]), c["lora_parameters"].pop("keys", None)),
        )
    return out


def _corpus(root: Path) -> list[Path]:
    """Adapter directories: the examples and every builder's output."""
    dirs = []
    for example in sorted(EXAMPLES.iterdir()):
        dirs.append(Path(shutil.copytree(example, root / "examples" / example.name)))
    built = root / "built"
    dirs.append(builders.llama_attention_adapter(built / "llama-attention").adapter_dir)
    dirs.append(builders.llama_all_layers_adapter(built / "llama-all-layers").adapter_dir)
    dirs.append(builders.gpt_oss_experts_adapter(built / "gpt-oss-experts").adapter_dir)
    dirs.append(builders.dora_adapter(built / "dora").adapter_dir)
    dirs.append(builders.embedding_adapter(built / "embedding").adapter_dir)
    dirs.append(builders.legacy_switch_adapter(built / "legacy-switch"))
    dirs.append(builders.vlm_prefixed_adapter(built / "vlm-prefixed"))
    dirs.append(_full_width_rank_adapter(built / "full-width-rank"))
    return dirs


def _full_width_rank_adapter(adapter_dir: Path) -> Path:
    """Rank 16 on 16-wide modules: a rank a transposed layout would also show, so
    replacing a config rank that disagrees with it is only an unsafe fix."""
    import numpy as np

    tensors = {}
    for i in range(2):
        tensors[f"model.layers.{i}.self_attn.q_proj.lora_a"] = np.zeros((16, 16), np.float32)
        tensors[f"model.layers.{i}.self_attn.q_proj.lora_b"] = np.zeros((16, 16), np.float32)
    config = {"fine_tune_type": "lora", "num_layers": -1, "lora_parameters": {"rank": 16, "scale": 2.0, "dropout": 0.0}}
    return builders._write_numpy_adapter(adapter_dir, tensors, config)


#: Runtime targets whose rules carry fixes (mlx-lm before 0.19 and before 0.14.2), and the others,
#: so their declarations are held to what they emit too.
TARGETS = ("mlx-lm@0.18", "mlx-lm@0.13", "mlx-lm@0.21.4", "mlx-vlm@0.5", "peft@0.13", "vllm", "llama.cpp")


def _lint_dir(target: Path, root: Path) -> list[tuple[str, object]]:
    from adapter_guard.targets import parse_target

    path = target / "adapter_config.json"
    found = []
    for unsafe in (False, True):
        targets = [parse_target(spec) for spec in TARGETS]
        settings = Settings(paths=[target], root=root, unsafe_fixes=unsafe, targets=targets)
        findings, _, _ = lint(path, path.read_bytes(), settings)
        found += [(f"{target.name}: {f.code} {f.message}", f) for f in findings]
    return found


@pytest.fixture(scope="module")
def emitted(tmp_path_factory, peft_corpus) -> list[tuple[str, object]]:
    """(where, finding) for every finding the lint emits on every variant of every corpus adapter."""
    root = tmp_path_factory.mktemp("corpus")
    found = []
    for name, sample in peft_corpus.items():
        found += _lint_dir(sample.adapter_dir, sample.adapter_dir)
    for corruption, spec in peft_writers.CORRUPTIONS.items():
        target = peft_writers.corrupted_copy(peft_corpus[spec.sample], corruption, root / "peft" / corruption)
        found += _lint_dir(target, root)
    # Mixed ranks where r is none of them: no rank_pattern can be proven.
    target = Path(shutil.copytree(peft_corpus["rank_alpha_pattern"].adapter_dir, root / "peft" / "mixed-r16"))
    peft_writers.edit_config(rank_pattern={}, r=16)(target)
    found += _lint_dir(target, root)
    for adapter_dir in _corpus(root):
        config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
        for name, variant in _variants(config).items():
            target = root / "variants" / f"{adapter_dir.name}-{name}"
            shutil.copytree(adapter_dir, target)
            path = target / "adapter_config.json"
            if name.startswith("no-weights"):
                (target / "adapters.safetensors").unlink()
            path.write_text(json.dumps(variant, indent=4), encoding="utf-8")
            found += _lint_dir(target, root)
    return found


def test_every_emitted_fix_is_one_its_rule_declares(emitted):
    for where, finding in emitted:
        declared = RULES[finding.code].fix
        if finding.fix is None:
            assert declared.availability is not Availability.ALWAYS, f"{where}: declared always fixable, no fix"
        else:
            assert declared.availability is not Availability.NEVER, f"{where}: declared not fixable, has a fix"
            assert declared.allows(finding.fix.applicability), f"{where}: {finding.fix.applicability} fix not declared"


def test_the_corpus_exercises_every_declared_fix(emitted):
    """Otherwise the test above would pass vacuously for the rules it never sees."""
    seen = {(f.code, f.fix.applicability) for _, f in emitted if f.fix is not None}
    declared = {(code, a) for code, rule in RULES.items() for a in rule.fix.applicabilities}
    assert declared - seen == set()


def test_the_corpus_exercises_every_sometimes_rule_without_a_fix(emitted):
    without = {f.code for _, f in emitted if f.fix is None}
    sometimes = {code for code, rule in RULES.items() if rule.fix.availability is Availability.SOMETIMES}
    assert sometimes - without == set()


def test_a_display_only_fix_is_never_applied_not_even_with_unsafe_fixes():
    from adapter_guard import jsondoc
    from adapter_guard.engine import plan_fixes
    from adapter_guard.findings import Finding, Fix
    from adapter_guard.registry import DISPLAY_ONLY, UNSAFE

    doc = jsondoc.load(b'{"a": 1}')
    shown = Finding("AG004", "c.json", "x", fix=Fix(DISPLAY_ONLY, ((("a",), 2),), "suggest a = 2"))
    applied = Finding("AG004", "c.json", "y", fix=Fix(UNSAFE, ((("b",), 3),), "set b = 3"))

    text, done = plan_fixes([shown, applied], doc, unsafe=True)

    assert done == [applied]
    assert jsondoc.load(text.encode()).value == {"a": 1, "b": 3}
