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
from core.stages import Fusion

RRF_K = 60  # Cormack et al. 2009


@dataclass(slots=True)
class _Entry:
    chunk: Chunk
    ranks: dict[str, int] = field(default_factory=dict)  # stage -> 1-based rank in that stage's list
    stage_scores: dict[str, float] = field(default_factory=dict)


def _collect(rankings: Mapping[str, Sequence[Hit]]) -> list[_Entry]:
    """One entry per chunk over all stage lists: its rank in each list and the stage scores of its inputs."""
    entries: dict[str, _Entry] = {}
    for stage, hits in rankings.items():
        for rank, hit in enumerate(hits, start=1):
            entry = entries.setdefault(hit.chunk.chunk_id, _Entry(hit.chunk))
            entry.ranks.setdefault(stage, rank)
            entry.stage_scores.update(hit.stage_scores)
            entry.stage_scores.setdefault(stage, hit.score)
    return list(entries.values())


def _fused(entries: list[_Entry], scores: list[float], name: str, limit: int | None) -> list[Hit]:
    """New hits (retriever `name`) best first. Ties (equal fused score) go to the hit with the better single best
    rank, then to the smaller chunk id, so the order is deterministic."""
    order = sorted(range(len(entries)), key=lambda i: (-scores[i], min(entries[i].ranks.values()),
                                                       entries[i].chunk.chunk_id))
    if limit is not None:
        order = order[:limit]
    return [Hit(entries[i].chunk, scores[i], name, {**entries[i].stage_scores, name: scores[i]}) for i in order]


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[Hit]],
    weights: Mapping[str, float] | None = None,
    k: int = RRF_K,
    limit: int | None = None,
) -> list[Hit]:
    """Fuse best-first rankings named by stage ("dense", "bm25") into new hits (retriever "rrf"), best first.
    Each new hit keeps the stage scores of its inputs plus "rrf"."""
    if k <= 0:
        raise ValueError(f"RRF k must be positive, got {k}")
    weights = weights or {}
    entries = _collect(rankings)
    scores = [sum(float(weights.get(stage, 1.0)) / (k + rank) for stage, rank in e.ranks.items()) for e in entries]
    return _fused(entries, scores, Fusion.RRF, limit)


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
    Each new hit keeps the stage scores of its inputs plus "zscore"."""
    weights = weights or {}
    standardised = {stage: _standardised(hits) for stage, hits in rankings.items()}
    entries = _collect(rankings)
    scores = [sum(float(weights.get(stage, 1.0)) * z.get(e.chunk.chunk_id, floor)
                  for stage, (z, floor) in standardised.items()) for e in entries]
    return _fused(entries, scores, Fusion.ZSCORE, limit)
