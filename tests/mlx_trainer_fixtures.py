"""pytest fixtures for the trainer corpus (registered from ``conftest.py``).

The corpus is built once per test session. Under pytest-xdist every worker
shares one build: the first to take the lock builds it beside the workers'
temporary directories, the others wait and read its manifest.
"""

from __future__ import annotations

import fcntl
import os

import pytest

import mlx_trainer


@pytest.fixture(scope="session")
def trainer_corpus(tmp_path_factory) -> dict[str, mlx_trainer.TrainedAdapter]:
    """Every :data:`mlx_trainer.VARIANTS` run of the stock trainer, by variant name."""
    pytest.importorskip("mlx_lm", reason="the mlx extra is not installed")
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by all workers of this session
    root = base / "mlx-trainer-corpus"
    with open(base / "mlx-trainer-corpus.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "manifest.json").is_file():
            mlx_trainer.build_corpus(root)
    return mlx_trainer.load_corpus(root)
