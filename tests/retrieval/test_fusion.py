from __future__ import annotations

import pytest

from core.records import Chunk, Hit
from retrieval.fusion import reciprocal_rank_fusion


def _hits(stage: str, ids: list[str]) -> list[Hit]:
    return [Hit(Chunk(i, i, i, 0, 1), 10.0 - r, stage, {stage: 10.0 - r}) for r, i in enumerate(ids)]


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
