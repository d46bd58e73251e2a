from __future__ import annotations

from api.abstention import best_score, decide
from core.records import Chunk, Hit
from domains.config import AbstentionConfig


def hit(retriever: str = "rrf", score: float = 0.1, **stages: float) -> Hit:
    return Hit(Chunk("c", "d", "text", 0, 4), score, retriever, stages)


def test_abstains_under_the_threshold_and_answers_over_it():
    hits = [hit(dense=0.31, rrf=0.03), hit(dense=0.42, rrf=0.02)]
    assert best_score(hits, "dense") == 0.42
    assert not decide(hits, AbstentionConfig(threshold=0.4)).abstain
    decision = decide(hits, AbstentionConfig(threshold=0.5))
    assert decision.abstain and "0.420" in decision.reason and decision.trace()["score"] == 0.42


def test_fused_and_rerank_scores():
    hits = [hit(dense=0.9, rrf=0.016, rerank=-2.0)]
    assert best_score(hits, "fused") == 0.016
    assert decide(hits, AbstentionConfig(threshold=0.0, score="rerank")).abstain


def test_no_hits_abstain_and_a_missing_stage_does_not():
    assert decide([], AbstentionConfig(threshold=-1.0)).abstain
    decision = decide([hit("bm25", 7.0, bm25=7.0)], AbstentionConfig(threshold=0.5, score="dense"))
    assert not decision.abstain and decision.score is None
