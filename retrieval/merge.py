"""Two indexes searched as one: the domain's corpus and a caller's own uploaded documents (a private collection).

Each index ranks its own candidates with the domain's whole retriever (dense + BM25, fused, reranked when the
domain reranks), so each list is in the order the domain was tuned for. Their fused scores cannot be compared:
a z-score is standardised over its own list's candidates (a 3-chunk collection spreads nothing like a 26,000-article
corpus) and an RRF score is made of ranks alone. So the two lists are merged by rank, with reciprocal rank fusion
(Cormack et al. 2009): a chunk is in one list only, so RRF reduces to interleaving, the first of each list, then
the second of each, and so on. What RRF leaves open is which of two hits of equal rank goes first. That tie is
broken by a score the two lists do share, because both indexes were built and are searched with the same models:
the cross-encoder's score when the domain reranks, else the dense cosine to the same query vector. So a clearly
relevant uploaded passage (closer to the question than the corpus's best) comes first, and an irrelevant one
takes every other place at most. Hits keep their own stage scores, so abstention reads what it always reads.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from core.protocols import Retriever
from core.records import Hit, Retrieval
from core.stages import Stage

SHARED_STAGES = (Stage.RERANK, Stage.DENSE)  # scores comparable across two indexes of one embedder / reranker


def _in_order(first: Hit, second: Hit) -> tuple[Hit, Hit]:
    """Two hits of equal rank, the better by the first score both carry first; `first` when none is shared."""
    for stage in SHARED_STAGES:
        if stage in first.stage_scores and stage in second.stage_scores:
            return (second, first) if second.stage_scores[stage] > first.stage_scores[stage] else (first, second)
    return first, second


def interleave(primary: Sequence[Hit], extra: Sequence[Hit], k: int) -> list[Hit]:
    """The two best-first lists merged by rank (RRF over two disjoint lists), equal ranks ordered by their shared
    score; the first `k`. A chunk id already placed is not placed again."""
    merged: list[Hit] = []
    for rank in range(max(len(primary), len(extra))):
        pair = [hits[rank] for hits in (primary, extra) if rank < len(hits)]
        merged += _in_order(*pair) if len(pair) == 2 else pair
    unique: dict[str, Hit] = {}
    for hit in merged:
        unique.setdefault(hit.chunk.chunk_id, hit)
    return list(unique.values())[:k]


class MergedRetriever:
    """`retrieve` over `primary` and `extra` (core.protocols.Retriever), merged by `interleave`. The timings keep
    the primary's stage names; the extra's come prefixed with `extra_name`."""

    def __init__(self, primary: Retriever, extra: Retriever, extra_name: str = "collection") -> None:
        self.primary = primary
        self.extra = extra
        self.extra_name = extra_name

    def retrieve(self, queries: Sequence[str], k: int | None = None,
                 filters: Mapping[str, Any] | None = None) -> list[Retrieval]:
        first = self.primary.retrieve(queries, k, filters)
        start = time.perf_counter()
        second = self.extra.retrieve(queries, k, filters)
        extra_ms = round((time.perf_counter() - start) * 1000, 3)
        out = []
        for a, b in zip(first, second, strict=True):
            timings = {**a.timings_ms, **{f"{self.extra_name}.{s}": ms for s, ms in b.timings_ms.items()},
                       self.extra_name: extra_ms}
            n = k or max(len(a.hits), len(b.hits))  # no k: each side gave its own default number
            out.append(Retrieval(a.query, tuple(interleave(a.hits, b.hits, n)), timings))
        return out
