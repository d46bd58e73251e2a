"""Abstention reads the configured stage's score: dense, rerank, or "fused" for whichever fusion the retriever
runs (RRF and z-score alike, on hits made by the real fusion functions)."""

from __future__ import annotations

import pytest

from core.records import Chunk, Hit
from core.stages import GATE_STAGE, AbstentionScore, Fusion, Stage
from domains.config import AbstentionConfig
from rag.abstention import best_score, decide
from retrieval.fusion import reciprocal_rank_fusion, zscore_fusion


def hit(retriever: str = "rrf", score: float = 0.1, chunk_id: str = "c", **stages: float) -> Hit:
    return Hit(Chunk(chunk_id, "d", "text", 0, 4), score, retriever, stages)


def test_abstains_under_the_threshold_and_answers_over_it():
    hits = [hit(dense=0.31, rrf=0.03), hit(dense=0.42, rrf=0.02)]
    assert best_score(hits, "dense") == 0.42
    assert not decide(hits, AbstentionConfig(threshold=0.4), Fusion.RRF).abstain
    decision = decide(hits, AbstentionConfig(threshold=0.5), Fusion.RRF)
    assert decision.abstain and "0.420" in decision.reason and decision.trace()["score"] == 0.42


def test_rerank_score():
    hits = [hit(dense=0.9, rrf=0.016, rerank=-2.0)]
    decision = decide(hits, AbstentionConfig(threshold=0.0, score=AbstentionScore.RERANK), Fusion.RRF)
    assert decision.abstain and decision.stage == "rerank" and decision.score == -2.0


def _fused(fusion: Fusion) -> list[Hit]:
    """Two first-stage rankings of three chunks, fused by the real function of `fusion`."""
    dense = [hit("dense", s, f"c{i}", dense=s) for i, s in enumerate((0.9, 0.5, 0.2))]
    bm25 = [hit("bm25", s, f"c{i}", bm25=s) for i, s in zip((1, 0, 2), (9.0, 6.0, 1.0), strict=True)]
    rankings = {Stage.DENSE: dense, Stage.BM25: bm25}
    match fusion:
        case Fusion.RRF:
            return reciprocal_rank_fusion(rankings)
        case Fusion.ZSCORE:
            return zscore_fusion(rankings)


@pytest.mark.parametrize("fusion", list(Fusion))
def test_fused_reads_the_score_of_the_fusion_the_retriever_ran(fusion: Fusion):
    hits = _fused(fusion)
    top = max(h.stage_scores[fusion] for h in hits)
    config = AbstentionConfig(threshold=top - 1e-6, score=AbstentionScore.FUSED)
    decision = decide(hits, config, fusion)
    assert decision.score == pytest.approx(top) and decision.stage == fusion and not decision.abstain
    above = decide(hits, AbstentionConfig(threshold=top + 1e-6, score=AbstentionScore.FUSED), fusion)
    assert above.abstain  # abstention is on: a threshold over the best fused score abstains


def test_fused_of_another_fusion_is_not_read():
    """A z-score domain must not look for an RRF score (that silently turned abstention off before)."""
    hits = _fused(Fusion.ZSCORE)
    assert best_score(hits, AbstentionScore.FUSED.stage_key(Fusion.RRF)) is None
    assert best_score(hits, AbstentionScore.FUSED.stage_key(Fusion.ZSCORE)) is not None


def test_no_hits_abstain_and_a_missing_stage_does_not():
    assert decide([], AbstentionConfig(threshold=-1.0), Fusion.ZSCORE).abstain
    decision = decide([hit("bm25", 7.0, bm25=7.0)], AbstentionConfig(threshold=0.5, score="dense"), Fusion.ZSCORE)
    assert not decision.abstain and decision.score is None


def test_a_question_the_domain_gate_places_elsewhere_is_abstained_on_whatever_its_score():
    config = AbstentionConfig(threshold=0.3)
    outside = decide([hit(dense=0.8, **{GATE_STAGE: -0.7})], config, Fusion.RRF)
    assert outside.abstain and "domain gate" in outside.reason and outside.trace()["gate_margin"] == -0.7
    inside = decide([hit(dense=0.8, **{GATE_STAGE: 0.2})], config, Fusion.RRF)
    assert not inside.abstain and inside.trace()["gate_margin"] == 0.2
    weak = decide([hit(dense=0.1, **{GATE_STAGE: 0.2})], config, Fusion.RRF)
    assert weak.abstain and "threshold" in weak.reason  # the threshold still reads first
    assert "gate_margin" not in decide([hit(dense=0.8)], config, Fusion.RRF).trace()  # no gate, no margin


def test_a_near_miss_is_abstained_on_where_the_domain_sets_a_weight():
    # close in meaning (dense 0.5 passes the threshold) but holding a tenth of the question's weighted terms
    near = [hit(dense=0.5, coverage=0.1, chunk_id="a"), hit(dense=0.35, coverage=0.2, chunk_id="b")]
    answer = [hit(dense=0.5, coverage=0.6)]
    config = AbstentionConfig(threshold=0.3, near_miss_weight=0.5, near_miss_threshold=0.7)
    decision = decide(near, config, Fusion.RRF)  # 0.5 + 0.5 x 0.2 (best coverage of any hit) = 0.6 < 0.7
    assert decision.abstain and "near miss" in decision.reason and decision.trace()["coverage"] == 0.2
    assert not decide(answer, config, Fusion.RRF).abstain  # 0.5 + 0.3 = 0.8
    off = AbstentionConfig(threshold=0.3)
    assert not decide(near, off, Fusion.RRF).abstain and "coverage" not in decide(near, off, Fusion.RRF).trace()
    assert not decide([hit(dense=0.5)], config, Fusion.RRF).abstain  # a retriever without BM25 gives no coverage


def test_a_negative_near_miss_weight_is_refused():
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="near_miss_weight"):
        AbstentionConfig(near_miss_weight=-1.0)
