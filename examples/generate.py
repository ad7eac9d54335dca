"""Regenerate the bundled example adapters (needs the [test] extra: mlx-lm, torch and peft).

    python examples/generate.py

Each adapter is real. The MLX ones: a tiny llama or gpt-oss built by stock
mlx-lm with seeded weights, LoRA applied by ``linear_to_lora_layers``, saved
as ``mlx_lm.lora`` saves it. The PEFT ones (``peft-*``): a tiny Llama built by
transformers, saved by PEFT's own ``save_pretrained``. Then a config is broken
the way real save paths and hand edits break it. The files are committed, so
running adapter-guard on them needs neither MLX nor torch.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import builders  # noqa: E402  (the test suite's builders: one way to make adapters)
import peft_writers  # noqa: E402  (the real-PEFT corpus of the test suite)

OUT = HERE / "adapters"


def _edit(adapter_dir: Path, edit) -> None:
    path = adapter_dir / "adapter_config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config, indent=4) + "\n")


def unsloth_style(config: dict) -> None:
    """What an incomplete unsloth save wrote: mirrors at the top, lora_parameters partial, no num_layers."""
    lora = config["lora_parameters"]
    config.update(rank=lora["rank"], scale=lora["scale"], dropout=lora["dropout"], peft_type="LORA")
    config["lora_parameters"] = {"rank": lora["rank"], "keys": lora["keys"]}
    del config["num_layers"]


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()

    builders.llama_attention_adapter(OUT / "clean-llama", dropout=0.0)

    built = builders.llama_attention_adapter(OUT / "unsloth-partial-save", dropout=0.05)
    _edit(built.adapter_dir, unsloth_style)
    # unsloth copies the base model's config.json next to the adapter: it proves num_layers.
    (built.adapter_dir / "config.json").write_text(json.dumps(built.base_config, indent=2) + "\n")

    built = builders.gpt_oss_experts_adapter(OUT / "gpt-oss-missing-rank")
    _edit(built.adapter_dir, lambda c: c["lora_parameters"].pop("rank"))

    built = builders.llama_attention_adapter(OUT / "missing-scale", dropout=0.0)
    _edit(built.adapter_dir, lambda c: c["lora_parameters"].pop("scale"))

    built = builders.dora_adapter(OUT / "dora-saved-as-lora")
    _edit(built.adapter_dir, lambda c: c.update(fine_tune_type="lora"))

    peft_examples()

    base = HERE / "base-models" / "tiny-llama"
    builders.write_base_dir(builders.tiny_llama_config(), base)
    print(f"wrote {sorted(p.name for p in OUT.iterdir())} and {base}")


def peft_examples() -> None:
    """PEFT adapters, the format most model repos hold: one working, two broken."""
    sources = OUT / ".peft-sources"
    plain = peft_writers.build_sample("plain_qv", sources / "plain_qv")
    shutil.copytree(plain.adapter_dir, OUT / "peft-clean")  # silent: a working adapter is never flagged
    # use_dora lost: PEFT loads the file and silently drops the magnitude vectors.
    dora = peft_writers.build_sample("dora", sources / "dora")
    peft_writers.corrupted_copy(dora, "use_dora_true_to_false", OUT / "peft-dora-flag-lost")
    # rank_pattern lost: PEFT refuses the tensors (size mismatch); the tensors prove the pattern.
    pattern = peft_writers.build_sample("rank_alpha_pattern", sources / "rank_alpha_pattern")
    peft_writers.corrupted_copy(pattern, "rank_pattern_removed", OUT / "peft-rank-pattern-lost")
    shutil.rmtree(sources)


if __name__ == "__main__":
    main()
