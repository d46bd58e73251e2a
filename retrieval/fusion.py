"""Fusing the dense and BM25 rankings: weighted reciprocal rank fusion or weighted z-score fusion.

RRF (Cormack, Clarke & Buettcher, SIGIR 2009; k = 60): score(d) = sum over rankings r of w_r / (k + rank_r(d)),
rank 1-based; a ranking that misses d adds nothing. It ignores score gaps, so a weak stage (BM25 on long case facts)
moves documents as much as a strong one: on CAIL and Huatuo it lost to dense alone (eval/README.md).

z-score: each stage's scores are standardised over that stage's own candidate list (mean 0, sd 1), a document the
list misses gets the list's lowest z, and score(d) = sum of w_r * z_r(d). Score gaps survive, so a small BM25 weight
can break the dense stage's near-ties without overruling it (measured on the dev splits; eval/README.md).
"""

from __future__ import annotations

import math
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


def _standardised(hits: Sequence[Hit]) -> tuple[dict[str, float], float]:
    """(z per chunk id, z given to chunks the list misses); a list of < 2 hits or no spread contributes 0."""
    if len(hits) < 2:
        return {h.chunk.chunk_id: 0.0 for h in hits}, 0.0
    scores = [h.score for h in hits]
    mean = sum(scores) / len(scores)
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    if sd == 0.0:
        return {h.chunk.chunk_id: 0.0 for h in hits}, 0.0
    z = {h.chunk.chunk_id: (h.score - mean) / sd for h in hits}
    return z, min(z.values())


def zscore_fusion(
    rankings: Mapping[str, Sequence[Hit]],
    weights: Mapping[str, float] | None = None,
    limit: int | None = None,
) -> list[Hit]:
    """Fuse stage rankings by the weighted sum of per-list z-scores into new hits (retriever "zscore"), best first.

    Each new hit keeps the stage scores of its inputs plus "zscore". Ties go to the better single best rank, then
    to the smaller chunk id.
    """
    weights = weights or {}
    entries: dict[str, _Entry] = {}
    standardised = {stage: _standardised(hits) for stage, hits in rankings.items()}
    for stage, hits in rankings.items():
        for rank, hit in enumerate(hits, start=1):
            entry = entries.setdefault(hit.chunk.chunk_id, _Entry(hit.chunk))
            entry.best_rank = min(entry.best_rank, rank)
            entry.stage_scores.update(hit.stage_scores)
            entry.stage_scores.setdefault(stage, hit.score)
    for chunk_id, entry in entries.items():
        entry.score = sum(float(weights.get(stage, 1.0)) * z.get(chunk_id, floor)
                          for stage, (z, floor) in standardised.items())
    ordered = sorted(entries.values(), key=lambda e: (-e.score, e.best_rank, e.chunk.chunk_id))
    if limit is not None:
        ordered = ordered[:limit]
    return [Hit(e.chunk, e.score, "zscore", {**e.stage_scores, "zscore": e.score}) for e in ordered]
