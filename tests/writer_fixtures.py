"""Session-scoped corpora written by the real writers, built once per test session.

Registered from ``tests/conftest.py``. Each fixture returns a dict from sample name to
the writer module's sample record (adapter folder, base kind, live output):

- ``peft_corpus``: ``peft_writers.PeftSample`` for every ``peft_writers.CASES`` entry.
- ``vlm_corpus``: ``vlm_writers.VlmSample`` for every ``vlm_writers.CASES`` entry.
- ``legacy_corpus``: ``legacy_writers.LegacySample`` for every ``legacy_writers.CASES`` entry.
- ``written_adapters``: all of the above as ``"corpus/name" -> (format, adapter_dir)``.

The folders are shared by the whole session: a test that edits one copies it first
(``peft_writers.corrupted_copy`` does).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def peft_corpus(tmp_path_factory):
    import peft_writers

    return peft_writers.build_corpus(tmp_path_factory.mktemp("peft_corpus"))


@pytest.fixture(scope="session")
def vlm_corpus(tmp_path_factory):
    import vlm_writers

    return vlm_writers.build_corpus(tmp_path_factory.mktemp("vlm_corpus"))


@pytest.fixture(scope="session")
def legacy_corpus(tmp_path_factory):
    import legacy_writers

    return legacy_writers.build_corpus(tmp_path_factory.mktemp("legacy_corpus"))


# The format each written sample is in, in the words of issue 9 / reference §5.1.
PEFT_LORA = "peft-lora"
MLX_VLM = "mlx-vlm"
MLX_VLM_LEGACY = "mlx-vlm-legacy"  # mlx-vlm <= 0.5: {rank, alpha, dropout}, .A/.B
MLX_LM_PRE_0_19 = "mlx-lm-pre-0.19"  # lora_layers, use_dora
ADAPTERS_NPZ = "adapters-npz"  # mlx-examples lora/ or mlx-lm < 0.6: adapters.npz, no config

VLM_FORMATS = {"lora": MLX_VLM, "dora": MLX_VLM, "full": MLX_VLM, "legacy_current_writer": MLX_VLM_LEGACY}
LEGACY_FORMATS = {
    "mlx_lm_0_18_lora": MLX_LM_PRE_0_19,
    "mlx_lm_0_18_dora": MLX_LM_PRE_0_19,
    "mlx_vlm_0_5_legacy": MLX_VLM_LEGACY,
    "mlx_lm_0_5_npz": ADAPTERS_NPZ,
    "mlx_examples_lora_npz": ADAPTERS_NPZ,
}


@pytest.fixture(scope="session")
def written_adapters(peft_corpus, vlm_corpus, legacy_corpus):
    """Every clean sample of every corpus: ``"corpus/name" -> (format, adapter_dir)``.

    Read-only: copy a folder before editing it.
    """
    adapters = {f"peft/{name}": (PEFT_LORA, s.adapter_dir) for name, s in peft_corpus.items()}
    adapters.update({f"vlm/{name}": (VLM_FORMATS[name], s.adapter_dir) for name, s in vlm_corpus.items()})
    adapters.update({f"legacy/{name}": (LEGACY_FORMATS[name], s.adapter_dir) for name, s in legacy_corpus.items()})
    return adapters
