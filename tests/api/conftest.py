"""API fixtures: the legal domain served by a real uvicorn server over real retrieval (MiniLM + BM25 on a slice
of the shipped Criminal Law) and the tiny real transformers generator."""

from __future__ import annotations

from dataclasses import replace

import pytest
from api_support import IN_DOMAIN, OUT_OF_DOMAIN


@pytest.fixture(scope="session")
def slice_retriever(tmp_path_factory):
    """The real HybridRetriever (dense + BM25, RRF) over a real index of Criminal Law articles 232-276
    (crimes against the person and against property: 53 chunks), embedded with MiniLM."""
    from slice_index import build_slice_index, legal_slice, minilm_cfg

    from api.build_retrieval import build_retriever
    from domains import load_domain

    cfg = minilm_cfg(load_domain("legal"))
    index = build_slice_index(cfg, legal_slice(range(232, 277)), tmp_path_factory.mktemp("legal-slice"))
    return build_retriever(cfg, index_dir=index)


@pytest.fixture(scope="session")
def calibrated_threshold(slice_retriever) -> float:
    """The threshold eval.calibrate would choose (best balanced accuracy) on held-apart questions."""
    from api.abstention import best_score
    from eval.calibrate import choose_threshold

    def scores(questions: list[str]) -> list[float]:
        return [best_score(slice_retriever.retrieve(q, 5), "dense") for q in questions]

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
        models=replace(cfg.models, generator=str(tiny_lm_dir)),
        generation=generation,
        abstention=replace(cfg.abstention, threshold=calibrated_threshold, score="dense"),
    )


@pytest.fixture(scope="session")
def legal_pipeline(legal_cfg, slice_retriever):
    from api.build import build_pipeline

    return build_pipeline(legal_cfg, retriever=slice_retriever)


@pytest.fixture(scope="session")
def feedback_root(tmp_path_factory):
    return tmp_path_factory.mktemp("feedback")


@pytest.fixture(scope="session")
def live_server(legal_pipeline, feedback_root):
    from live_server import LiveServer

    from api.server import create_app
    from api.server.feedback import JsonlFeedbackStore

    store = JsonlFeedbackStore(root_for=lambda domain: feedback_root / domain)
    app = create_app(["legal"], build=lambda _: legal_pipeline, api_keys=[], feedback=store)
    with LiveServer(app) as server:
        yield server
