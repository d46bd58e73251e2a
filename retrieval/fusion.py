"""Weighted reciprocal rank fusion (RRF, Cormack, Clarke & Buettcher, SIGIR 2009; k = 60).

score(d) = sum over rankings r of  w_r / (k + rank_r(d)),  rank 1-based; a ranking that misses d adds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.records import Chunk, Hit

RRF_K = 60  # Cormack et al. 2009


@dataclass(slots=True)
class _Entry:
    chunk: Chunk
    score: float = 0.0
    best_rank: int = 1 << 30
    stage_scores: dict[str, float] = field(default_factory=dict)


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[Hit]],
    weights: Mapping[str, float] | None = None,
    k: int = RRF_K,
    limit: int | None = None,
) -> list[Hit]:
    """Fuse best-first rankings named by stage ("dense", "bm25") into new hits (retriever "rrf"), best first.

    Each new hit keeps the stage scores of its inputs plus "rrf". Ties (equal fused score) go to the hit with the
    better single best rank, then to the smaller chunk id, so the order is deterministic.
    """
    if k <= 0:
        raise ValueError(f"RRF k must be positive, got {k}")
    weights = weights or {}
    entries: dict[str, _Entry] = {}
    for stage, hits in rankings.items():
        weight = float(weights.get(stage, 1.0))
        for rank, hit in enumerate(hits, start=1):
            entry = entries.setdefault(hit.chunk.chunk_id, _Entry(hit.chunk))
            entry.score += weight / (k + rank)
            entry.best_rank = min(entry.best_rank, rank)
            entry.stage_scores.update(hit.stage_scores)
            entry.stage_scores.setdefault(stage, hit.score)
    ordered = sorted(entries.values(), key=lambda e: (-e.score, e.best_rank, e.chunk.chunk_id))
    if limit is not None:
        ordered = ordered[:limit]
    return [Hit(e.chunk, e.score, "rrf", {**e.stage_scores, "rrf": e.score}) for e in ordered]
