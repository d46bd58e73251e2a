"""The cross-encoder reranker on a tiny, locally built Qwen2 sequence classifier (its tokenizer has a chat
template, which sentence-transformers 6.2 would apply to the pairs: the reranker removes it)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core import hardware
from core.records import Chunk, Hit
from retrieval.reranker import CrossEncoderReranker


def _hits(texts: list[str]) -> list[Hit]:
    return [Hit(Chunk(f"c{i}", f"d{i}", t, 0, len(t)), 1.0 / (i + 1), "rrf", {"rrf": 1.0 / (i + 1)})
            for i, t in enumerate(texts)]


def test_rerank_returns_new_hits_scored_by_the_model(tiny_classifier_dir: Path) -> None:
    reranker = CrossEncoderReranker(str(tiny_classifier_dir), precision="fp32", max_length=64).load()
    assert not reranker._model.tokenizer.chat_template
    hits = _hits(["盗窃公私财物，数额较大的", "故意杀人的，处死刑", "交通肇事后逃逸"])
    out = reranker.rerank("盗窃罪", hits)
    assert sorted(h.chunk.chunk_id for h in out) == ["c0", "c1", "c2"]
    assert [h.score for h in out] == sorted((h.score for h in out), reverse=True)
    expected = dict(zip(["c0", "c1", "c2"], reranker.score("盗窃罪", [h.chunk.text for h in hits]), strict=True))
    for h in out:
        assert h.retriever == "rerank" and h.stage_scores["rerank"] == h.score == expected[h.chunk.chunk_id]
        assert "rrf" in h.stage_scores
    assert hits[0].retriever == "rrf" and "rerank" not in hits[0].stage_scores  # inputs untouched
    assert reranker.rerank("q", []) == []


def test_auto_precision_is_resolved_and_logged(tiny_classifier_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)  # injected: any CPU means the same
    monkeypatch.setattr(hardware, "cuda_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="retrieval.reranker"):
        reranker = CrossEncoderReranker(str(tiny_classifier_dir), max_length=64).load()
    assert reranker.precision == "fp32"
    assert "precision fp32 (auto: this CPU has no native bf16), device cpu (auto: no CUDA GPU)" in caplog.text
