"""Session-scoped corpora written by the real writers, built once per test session.

Registered from ``tests/conftest.py``. Each fixture returns a dict from sample name to
the writer module's sample record (adapter folder, base kind, live output):

- ``peft_corpus``: ``peft_writers.PeftSample`` for every ``peft_writers.CASES`` entry.
- ``vlm_corpus``: ``vlm_writers.VlmSample`` for every ``vlm_writers.CASES`` entry.
- ``legacy_corpus``: ``legacy_writers.LegacySample`` for every ``legacy_writers.CASES`` entry.

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
