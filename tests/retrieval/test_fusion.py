from __future__ import annotations

import pytest

from core.records import Chunk, Hit
from retrieval.fusion import reciprocal_rank_fusion, zscore_fusion


def _hits(stage: str, ids: list[str]) -> list[Hit]:
    return [Hit(Chunk(i, i, i, 0, 1), 10.0 - r, stage, {stage: 10.0 - r}) for r, i in enumerate(ids)]


def _scored(stage: str, scored: list[tuple[str, float]]) -> list[Hit]:
    return [Hit(Chunk(i, i, i, 0, 1), s, stage, {stage: s}) for i, s in scored]


def test_rrf_scores_by_hand() -> None:
    fused = reciprocal_rank_fusion({"dense": _hits("dense", ["a", "b", "c"]), "bm25": _hits("bm25", ["c", "a"])})
    by_id = {h.chunk.chunk_id: h for h in fused}
    assert by_id["a"].score == pytest.approx(1 / 61 + 1 / 62)
    assert by_id["b"].score == pytest.approx(1 / 62)
    assert by_id["c"].score == pytest.approx(1 / 63 + 1 / 61)
    assert [h.chunk.chunk_id for h in fused] == ["a", "c", "b"]
    assert by_id["a"].stage_scores == {"dense": 10.0, "bm25": 9.0, "rrf": pytest.approx(1 / 61 + 1 / 62)}
    assert by_id["b"].stage_scores.keys() == {"dense", "rrf"}
    assert all(h.retriever == "rrf" for h in fused)


def test_weights_and_k() -> None:
    rankings = {"dense": _hits("dense", ["a", "b"]), "bm25": _hits("bm25", ["b", "a"])}
    fused = reciprocal_rank_fusion(rankings, {"dense": 1.0, "bm25": 3.0}, k=1)
    assert [h.chunk.chunk_id for h in fused] == ["b", "a"]
    assert fused[0].score == pytest.approx(1 / 3 + 3 / 2)


def test_ties_are_deterministic_and_inputs_untouched() -> None:
    dense, bm25 = _hits("dense", ["x", "y"]), _hits("bm25", ["y", "x"])
    fused = reciprocal_rank_fusion({"dense": dense, "bm25": bm25}, limit=1)
    assert [h.chunk.chunk_id for h in fused] == ["x"]  # equal score and best rank: smaller id
    assert dense[0].retriever == "dense" and dict(dense[0].stage_scores) == {"dense": 10.0}
    with pytest.raises(ValueError):
        reciprocal_rank_fusion({"dense": dense}, k=0)


def test_zscore_by_hand() -> None:
    # dense: a 3, b 2, c 1 -> z = +1.2247, 0, -1.2247; bm25: c 10, a 0 -> z = +1, -1; b misses bm25 -> its min, -1
    dense = _scored("dense", [("a", 3.0), ("b", 2.0), ("c", 1.0)])
    bm25 = _scored("bm25", [("c", 10.0), ("a", 0.0)])
    fused = zscore_fusion({"dense": dense, "bm25": bm25}, {"dense": 1.0, "bm25": 0.5})
    by_id = {h.chunk.chunk_id: h for h in fused}
    z = 1.5**0.5
    assert by_id["a"].score == pytest.approx(z - 0.5)
    assert by_id["b"].score == pytest.approx(0.0 - 0.5)
    assert by_id["c"].score == pytest.approx(-z + 0.5)
    assert [h.chunk.chunk_id for h in fused] == ["a", "b", "c"]
    assert by_id["c"].stage_scores == {"dense": 1.0, "bm25": 10.0, "zscore": pytest.approx(-z + 0.5)}
    assert all(h.retriever == "zscore" for h in fused)


def test_zscore_keeps_score_gaps_that_rrf_loses() -> None:
    # dense is sure about "a" (a large gap); bm25 weakly prefers "b": RRF 1:1 ties them on rank, z-score keeps "a"
    dense = _scored("dense", [("a", 0.9), ("b", 0.3), ("c", 0.29), ("d", 0.28)])
    bm25 = _scored("bm25", [("b", 5.1), ("a", 5.0), ("c", 4.9), ("d", 4.8)])
    assert zscore_fusion({"dense": dense, "bm25": bm25})[0].chunk.chunk_id == "a"


def test_zscore_degenerate_lists_contribute_nothing() -> None:
    one = _scored("bm25", [("x", 7.0)])
    flat = _scored("bm25", [("x", 2.0), ("y", 2.0)])
    dense = _scored("dense", [("y", 0.8), ("x", 0.2)])
    for bm25 in (one, flat, []):
        fused = zscore_fusion({"dense": dense, "bm25": bm25}, {"bm25": 5.0}, limit=1)
        assert [h.chunk.chunk_id for h in fused] == ["y"]
