"""Shared fixtures: tiny models are built once per test run; threads are pinned to one. The legal domain served
over real retrieval (MiniLM + BM25 on a slice of the shipped Criminal Law) with the tiny real transformers
generator, as a pipeline and behind a real uvicorn server, for the rag, api, cli and ui tests."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from api_support import IN_DOMAIN, OUT_OF_DOMAIN
from fakes import hits_of

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


@pytest.fixture(scope="session")
def slice_retriever(tmp_path_factory):
    """The real HybridRetriever (dense + BM25, RRF) over a real index of Criminal Law articles 232-276
    (crimes against the person and against property: 53 chunks), embedded with MiniLM."""
    from slice_index import build_slice_index, legal_slice, minilm_cfg

    from domains import load_domain
    from rag.build_retrieval import build_retriever

    cfg = minilm_cfg(load_domain("legal"))
    index = build_slice_index(cfg, legal_slice(range(232, 277)), tmp_path_factory.mktemp("legal-slice"))
    return build_retriever(cfg, index_dir=index)


@pytest.fixture(scope="session")
def calibrated_threshold(slice_retriever) -> float:
    """The threshold eval.calibrate would choose (best balanced accuracy) on held-apart questions."""
    from eval.calibrate import choose_threshold
    from rag.abstention import best_score

    def scores(questions: list[str]) -> list[float]:
        return [best_score(hits_of(slice_retriever, q, 5), "dense") for q in questions]

    return choose_threshold(scores(IN_DOMAIN), scores(OUT_OF_DOMAIN)).threshold


@pytest.fixture(scope="session")
def legal_cfg(tiny_lm_dir, calibrated_threshold):
    from slice_index import minilm_cfg

    from domains import load_domain

    cfg = minilm_cfg(load_domain("legal"))
    # the tiny random model's greedy output is only newlines: sample, so the answer has text to cite and check
    generation = replace(cfg.generation, backend="transformers", temperature=1.0, max_new_tokens=48)
    return replace(
        cfg,
        # the tiny model, untuned: the shipped adapter has the real 0.5B model's shapes
        models=replace(cfg.models, generator=str(tiny_lm_dir), generator_adapter="", generator_adapter_sha256=""),
        generation=generation,
        abstention=replace(cfg.abstention, threshold=calibrated_threshold, score="dense"),
    )


@pytest.fixture(scope="session")
def legal_pipeline(legal_cfg, slice_retriever):
    from rag.build import build_pipeline

    return build_pipeline(legal_cfg, retriever=slice_retriever)


@pytest.fixture(scope="session")
def feedback_root(tmp_path_factory):
    return tmp_path_factory.mktemp("feedback")


@pytest.fixture(scope="session")
def live_server(legal_pipeline, feedback_root):
    from live_server import LiveServer

    from api import create_app
    from api.feedback import JsonlFeedbackStore

    store = JsonlFeedbackStore(root_for=lambda domain: feedback_root / domain)
    app = create_app(["legal"], build=lambda _: legal_pipeline, api_keys=[], feedback=store)
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    from models.registry import is_fetched, resolve_model

    if not is_fetched("all-minilm-l6-v2"):
        pytest.skip("all-minilm-l6-v2 is not fetched; run `dossier models fetch all-minilm-l6-v2`")
    return resolve_model("all-minilm-l6-v2")
