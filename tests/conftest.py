"""Shared fixtures: tiny models are built once per test run; threads are pinned to one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# One thread: the machine has two cores and is shared; tests must not fight each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _private_dossier_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Ingest stores, indexes and feedback written by tests go to a temporary DOSSIER_HOME, never into the
    developer's workspace (models still come from the shared DOSSIER_CACHE_DIR)."""
    os.environ["DOSSIER_HOME"] = str(tmp_path_factory.mktemp("dossier-home"))


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_models import build_tiny_sequence_classifier

    return build_tiny_sequence_classifier(tmp_path_factory.mktemp("tiny-cls"))
