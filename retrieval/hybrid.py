"""The hybrid retriever: dense (FAISS) and BM25 candidates, fused (RRF or z-score), optionally reranked by a
cross-encoder.

Every hit carries the score each stage gave it in `stage_scores` (`core.stages` names: "dense" cosine, "bm25",
"rrf" or "zscore", "rerank"; "article" for a named article, "bank" for the question bank's votes; "coverage", the
share of the question's weighted terms the passage holds), so the API can show why a passage was chosen. Stages
come from `RetrievalConfig.stages`; any subset with a first stage works. With a question bank
(retrieval/question_bank.py) and the dense stage, the bank's votes are fused as one more list.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError, IndexError_
from core.records import Chunk, Hit, Retrieval
from core.stages import COVERAGE_STAGE, FIRST_STAGES, GATE_STAGE, Fusion, Stage
from domains.config import RetrievalConfig
from retrieval.article_lookup import ArticleCatalogue
from retrieval.domain_gate import DomainGate
from retrieval.faiss_index import FaissIndexSpec, chunk_keys
from retrieval.filters import MetadataFilter
from retrieval.fusion import reciprocal_rank_fusion, zscore_fusion
from retrieval.hubness import HubCorrection, hub_scores
from retrieval.index_build import LoadableEmbedder
from retrieval.index_files import OpenIndex, open_index
from retrieval.manifest import EmbedderInfo
from retrieval.question_bank import QuestionBank, ranked_votes
from retrieval.reranker import CrossEncoderReranker
from retrieval.scope import ScopeMap
from retrieval.scope_router import ScopeRouter
from retrieval.term_coverage import TermCoverage
from retrieval.zh_tokenizer import JiebaTokenizer

log = logging.getLogger(__name__)

ARTICLE_STAGE = "article"  # the stage score of a hit found by the article a question names (score 1.0)
BANK_STAGE = "bank"  # the stage score of a hit voted for by the nearest bank questions (summed cosine)
SCOPE_STAGE = "scope"  # the dense cosine of a hit found inside the law the nearest bank questions point to
HUB_STAGE = "hub"  # a timing only: the dense ranking re-sorted by hub-corrected cosine (retrieval/hubness.py)

class _Timer:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def add(self, stage: str, start: float) -> None:
        self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - start) * 1000


class HybridRetriever:
    """`retrieve(queries, k, filters) -> list[Retrieval]` (core.protocols.Retriever): queries are embedded
    together, so evaluation passes many and serving one."""

    def __init__(self, cfg: RetrievalConfig, *, index_location: Path, embedder: LoadableEmbedder,
                 tokenizer: JiebaTokenizer, faiss_spec: FaissIndexSpec,
                 reranker: CrossEncoderReranker | None = None, stages: Sequence[str] | None = None,
                 bank: QuestionBank | None = None, gate: DomainGate | None = None,
                 router: ScopeRouter | None = None) -> None:
        self.cfg = cfg
        self.stages = _stages(stages or cfg.stages)
        if Stage.RERANK in self.stages and reranker is None:
            raise ConfigError("retrieval stage 'rerank' needs a reranker: set [models] reranker in domain.toml")
        self.index_location = index_location
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.faiss_spec = faiss_spec
        self.reranker = reranker
        self.bank = bank if Stage.DENSE in self.stages else None  # it votes with the dense stage's query vectors
        self.gate = gate if Stage.DENSE in self.stages else None  # and the gate reads them
        self.router = router if Stage.DENSE in self.stages else None  # and the scope router
        self._keys_of_doc: dict[str, list[int]] = {}
        self._scopes: ScopeMap | None = None
        self._hubs: HubCorrection | None = None
        self.default_filter = MetadataFilter.from_mapping(cfg.filters)
        self._index: OpenIndex | None = None
        self._articles: ArticleCatalogue | None = None
        self._coverage: TermCoverage | None = None
        self._masks: OrderedDict[MetadataFilter, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def index(self) -> OpenIndex:
        if self._index is None:
            raise IndexError_("HybridRetriever used before load()")
        return self._index

    def load(self) -> HybridRetriever:
        if self._index is not None:
            return self
        dense = Stage.DENSE in self.stages
        if dense:
            self.embedder.load()
        e = self.embedder
        expected = EmbedderInfo(e.name, e.dim if dense else 0, e.precision, e.backend)
        self._index = open_index(self.index_location, expected, self.tokenizer, self.faiss_spec)
        if Stage.BM25 in self.stages:  # the term weights of the coverage every hit carries
            bm25 = self._index.bm25
            self._coverage = TermCoverage.from_frequencies(bm25.document_frequencies(), len(bm25))
        if self.cfg.article_lookup:
            start = time.perf_counter()
            self._articles = ArticleCatalogue(self._index.docstore.metadata_by_key())
            log.info("article lookup: %d articles of %d law names (%.1f s)", len(self._articles),
                     len(self._articles.laws), time.perf_counter() - start)
        if self.gate is not None and self.gate.embedder != e.name:
            raise ConfigError(f"the domain gate was fitted on {self.gate.embedder} vectors, the retriever embeds "
                              f"with {e.name}: fit it again with `dossier train gate`")
        if self.router is not None and self.router.embedder != e.name:
            raise ConfigError(f"the scope router was fitted on {self.router.embedder} vectors, the retriever embeds "
                              f"with {e.name}: fit it again with `dossier train router`")
        if self.bank is not None:
            if self.bank.embedder != e.name:
                raise ConfigError(f"the question bank was embedded with {self.bank.embedder}, the retriever embeds "
                                  f"with {e.name}: build it again with `dossier train bank`")
            self._keys_of_doc = self._index.docstore.keys_by_doc()
            if self.cfg.hub_weight > 0:
                start = time.perf_counter()
                keys, vectors = self._index.dense.vectors()
                scores = hub_scores(keys, vectors, self.bank, self.cfg.hub_neighbours, self._keys_of_doc)
                self._hubs = HubCorrection(keys, scores, self.cfg.hub_weight)
                log.info("hub correction: %d chunks against %d bank questions, weight %.2f (%.1f s)", len(keys),
                         len(self.bank.doc_ids), self.cfg.hub_weight, time.perf_counter() - start)
            if self.cfg.scope_field and self.cfg.scope_weight > 0:
                self._scopes = ScopeMap(self._index.docstore.metadata_by_key(), self._keys_of_doc,
                                        self.cfg.scope_field)
                log.info("scope stage: %d scopes by %s", len(self._scopes), self.cfg.scope_field)
        if self.reranker is not None and Stage.RERANK in self.stages:
            self.reranker.load()
        return self

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def retrieve(self, queries: Sequence[str], k: int | None = None,
                 filters: Mapping[str, Any] | None = None) -> list[Retrieval]:
        """The same filters for all queries; each record carries the batch's stage timings."""
        timer = _Timer()
        found = self._run(list(queries), k or self.cfg.final_k, filters, timer)
        timings = {s: round(v, 3) for s, v in timer.ms.items()}
        return [Retrieval(q, tuple(hits), timings) for q, hits in zip(queries, found, strict=True)]

    def _run(self, queries: list[str], k: int, filters: Mapping[str, Any] | None, timer: _Timer) -> list[list[Hit]]:
        where = self.default_filter.merged(MetadataFilter.from_mapping(filters))
        allowed = self._allowed(where) if where else None
        if allowed is not None and not allowed[0].any():
            return [[] for _ in queries]
        found: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # stage -> scores (q, k), keys (q, k)
        vectors = cosines = np.zeros((0, 0), dtype=np.float32)
        if Stage.DENSE in self.stages:
            vectors, found[Stage.DENSE] = self._dense(queries, max(self.cfg.dense_k, k), allowed, timer)
            if self._hubs is not None:
                start = time.perf_counter()
                scores, ids, cosines = self._hubs.rerank(*found[Stage.DENSE])
                found[Stage.DENSE] = scores, ids
                timer.add(HUB_STAGE, start)
            # the bank's votes feed its own list and the scope stage; a bank that only corrects hubs casts none
            if self.bank is not None and (self.cfg.bank_weight > 0 or self._scopes is not None):
                start = time.perf_counter()
                votes = self.bank.votes(vectors, self.cfg.bank_neighbours, self.cfg.bank_min_cosine)
                timer.add(BANK_STAGE, start)
                if self.cfg.bank_weight > 0:
                    found[BANK_STAGE] = self._bank(votes, max(self.cfg.dense_k, k), allowed, timer)
                if self._scopes is not None:
                    if self.cfg.scope_min_cosine != self.cfg.bank_min_cosine:
                        votes = self.bank.votes(vectors, self.cfg.bank_neighbours, self.cfg.scope_min_cosine)
                    found[SCOPE_STAGE] = self._scope(vectors, votes, max(self.cfg.dense_k, k), allowed, timer)
        if Stage.BM25 in self.stages:
            found[Stage.BM25] = self._bm25(queries, max(self.cfg.sparse_k, k), allowed, timer)
        named = self._named_articles(queries, allowed, timer)
        start = time.perf_counter()
        keys = np.unique(np.concatenate([ids[ids >= 0] for _, ids in found.values()] + [np.array(named_keys, np.int64)
                                                                                       for named_keys in named]))
        chunks = self.index.docstore.chunks(keys.tolist())  # one lookup for every stage and query
        rankings = [
            {stage: _hits(stage, scores[i], ids[i], chunks, also_dense=stage == SCOPE_STAGE,
                          cosines=cosines[i] if stage == Stage.DENSE and self._hubs is not None else None)
             for stage, (scores, ids) in found.items()}
            for i in range(len(queries))
        ]
        timer.add("docstore", start)
        if BANK_STAGE in found:
            start = time.perf_counter()
            self._with_dense_scores(rankings, vectors)
            timer.add(BANK_STAGE, start)
        scope_weights = self._scope_weights(vectors, len(queries), timer)
        found_hits = [_named_first(self._finish(q, r, k, timer, w), [chunks[key] for key in n if key in chunks], k)
                      for q, r, n, w in zip(queries, rankings, named, scope_weights, strict=True)]
        if self._coverage is not None:
            found_hits = self._with_coverage(self._coverage, queries, found_hits, chunks, timer)
        if self.gate is None:
            return found_hits
        margins = self.gate.margins(vectors)  # every hit of a query carries its question's margin
        return [[replace(h, stage_scores={**h.stage_scores, GATE_STAGE: float(m)}) for h in hits]
                for hits, m in zip(found_hits, margins, strict=True)]

    def _scope_weights(self, vectors: np.ndarray, n: int, timer: _Timer) -> list[float]:
        """Each query's scope weight: `scope_weight_routed` where the scope router calls it a case description."""
        if self.router is None or self._scopes is None or not len(vectors):
            return [self.cfg.scope_weight] * n
        start = time.perf_counter()
        routed, plain = self.cfg.scope_weight_routed, self.cfg.scope_weight
        weights = [routed if case else plain for case in self.router.routes(vectors)]
        timer.add("scope_router", start)
        return weights

    def _with_coverage(self, coverage: TermCoverage, queries: list[str], found: list[list[Hit]],
                       chunks: Mapping[int, Chunk], timer: _Timer) -> list[list[Hit]]:
        """Each hit with the share of its query's weighted terms it holds (retrieval/term_coverage.py), read from
        the terms the chunk was indexed with."""
        start = time.perf_counter()
        key_of = {chunk.chunk_id: key for key, chunk in chunks.items()}
        terms = self.index.docstore.tokens([key_of[h.chunk.chunk_id] for hits in found for h in hits])
        out = []
        for query, hits in zip(queries, found, strict=True):
            query_terms = self.tokenizer.tokenize(query)
            out.append([replace(h, stage_scores={**h.stage_scores, COVERAGE_STAGE: round(coverage.share(
                query_terms, terms.get(key_of[h.chunk.chunk_id], frozenset())), 4)}) for h in hits])
        timer.add(COVERAGE_STAGE, start)
        return out

    def _named_articles(self, queries: list[str], allowed: tuple[np.ndarray, np.ndarray] | None,
                        timer: _Timer) -> list[list[int]]:
        """Per query, the index keys of the articles it names (within the filter), or nothing."""
        if self._articles is None:
            return [[] for _ in queries]
        start = time.perf_counter()
        permitted = None if allowed is None else set(allowed[1].tolist())
        named = [[key for key in self._articles.lookup(q) if permitted is None or key in permitted] for q in queries]
        timer.add(ARTICLE_STAGE, start)
        return named

    def _finish(self, query: str, ranking: dict[str, list[Hit]], k: int, timer: _Timer,
                scope_weight: float) -> list[Hit]:
        start = time.perf_counter()
        if len(ranking) > 1:
            weights = {Stage.DENSE: self.cfg.dense_weight, Stage.BM25: self.cfg.sparse_weight,
                       BANK_STAGE: self.cfg.bank_weight, SCOPE_STAGE: scope_weight}
            match self.cfg.fusion:
                case Fusion.RRF:
                    hits = reciprocal_rank_fusion(ranking, weights, k=self.cfg.rrf_k)
                case Fusion.ZSCORE:
                    hits = zscore_fusion(ranking, weights)
            timer.add("fusion", start)
        else:
            hits = next(iter(ranking.values()))
        if Stage.RERANK in self.stages and self.reranker is not None and hits:
            start = time.perf_counter()
            hits = self.reranker.rerank(query, hits[: max(self.cfg.rerank_top_n, k)])
            timer.add(Stage.RERANK, start)
        return hits[:k]

    def _dense(self, queries: list[str], k: int, allowed: tuple[np.ndarray, np.ndarray] | None,
               timer: _Timer) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """(the query vectors, (scores, keys))."""
        start = time.perf_counter()
        vectors = self.embedder.embed(queries, role="query")  # (q, dim)
        timer.add("dense_embed", start)
        start = time.perf_counter()
        scores, keys = self.index.dense.search(vectors, k, None if allowed is None else allowed[1])
        timer.add("dense_search", start)
        return vectors, (scores, keys)

    def _with_dense_scores(self, rankings: list[dict[str, list[Hit]]], vectors: np.ndarray) -> None:
        """Give each bank hit its chunk's dense cosine with the query, as the dense stage scores its own: the
        abstention threshold reads it, and a document the bank brings in from outside the dense list must not
        escape that check (an off-topic question still has nearest bank questions)."""
        for ranking, vector in zip(rankings, vectors, strict=True):
            hits = ranking.get(BANK_STAGE) or []
            if not hits:
                continue
            keys = chunk_keys(h.chunk.chunk_id for h in hits)
            scores, found = self.index.dense.search(vector[None, :], len(keys), keys)
            cosine = {int(key): float(score) for score, key in zip(scores[0], found[0], strict=True) if key >= 0}
            ranking[BANK_STAGE] = [Hit(h.chunk, h.score, h.retriever, {**h.stage_scores, Stage.DENSE: cosine[key]})
                                   if key in cosine else h for h, key in zip(hits, keys.tolist(), strict=True)]

    def _bank(self, votes: list[dict[str, float]], k: int, allowed: tuple[np.ndarray, np.ndarray] | None,
              timer: _Timer) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        permitted = None if allowed is None else set(allowed[1].tolist())
        ranked = [ranked_votes(v, self._keys_of_doc, permitted, k) for v in votes]
        timer.add(BANK_STAGE, start)
        return np.stack([s for s, _ in ranked]), np.stack([keys for _, keys in ranked])

    def _scope(self, vectors: np.ndarray, votes: list[dict[str, float]], k: int,
               allowed: tuple[np.ndarray, np.ndarray] | None, timer: _Timer) -> tuple[np.ndarray, np.ndarray]:
        """Per query, the dense search inside the scope its bank neighbours lead to (-1 rows where none leads)."""
        assert self._scopes is not None
        start = time.perf_counter()
        scores = np.full((len(votes), k), -np.inf, dtype=np.float32)
        keys = np.full((len(votes), k), -1, dtype=np.int64)
        for i, (vector, query_votes) in enumerate(zip(vectors, votes, strict=True)):
            scope = self._scopes.leading(query_votes, self.cfg.scope_min_share)
            if scope is None:
                continue
            inside = self._scopes.keys[scope]
            if allowed is not None:
                inside = np.intersect1d(inside, allowed[1], assume_unique=True)
            if not len(inside):
                continue
            found_scores, found_keys = self.index.dense.search(vector[None, :], min(k, len(inside)), inside)
            n = found_scores.shape[1]
            scores[i, :n], keys[i, :n] = found_scores[0], found_keys[0]
        timer.add(SCOPE_STAGE, start)
        return scores, keys

    def _bm25(self, queries: list[str], k: int, allowed: tuple[np.ndarray, np.ndarray] | None,
              timer: _Timer) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        scores, positions = self.index.bm25.search(queries, k, None if allowed is None else allowed[0])
        keys_by_pos = self.index.docstore.keys_by_position()
        keys = np.where(positions >= 0, keys_by_pos[np.maximum(positions, 0)], -1)
        timer.add(Stage.BM25, start)
        return scores, keys

    def _allowed(self, where: MetadataFilter) -> tuple[np.ndarray, np.ndarray]:
        """(mask over BM25 positions, allowed FAISS keys), cached for the last 32 filters."""
        with self._lock:
            if where in self._masks:
                self._masks.move_to_end(where)
                return self._masks[where]
        mask = self.index.docstore.positions_matching(where)
        allowed = (mask, self.index.docstore.keys_by_position()[mask])
        with self._lock:
            self._masks[where] = allowed
            while len(self._masks) > 32:
                self._masks.popitem(last=False)
        return allowed


def _stages(names: Sequence[str]) -> tuple[Stage, ...]:
    """Validated stage names, in the given order: at least one first stage, then optionally rerank."""
    valid = ", ".join(Stage)
    try:
        stages = tuple(Stage(name) for name in names)
    except ValueError as err:
        raise ConfigError(f"retrieval stages {list(names)}: valid stages are {valid}") from err
    if not set(stages) & set(FIRST_STAGES):
        raise ConfigError(f"retrieval stages {list(names)}: use dense and/or bm25 (then optionally rerank); "
                          f"valid stages: {valid}")
    return stages


def _named_first(hits: list[Hit], named: list[Chunk], k: int) -> list[Hit]:
    """The named articles first (keeping the scores the stages gave them, plus the article stage's 1.0), then the
    ranking without them."""
    if not named:
        return hits
    ranked = {h.chunk.chunk_id: h for h in hits}
    first = []
    for chunk in named:
        earlier = ranked.get(chunk.chunk_id)
        scores = {**(earlier.stage_scores if earlier else {}), ARTICLE_STAGE: 1.0}
        first.append(Hit(chunk, earlier.score if earlier else 1.0, earlier.retriever if earlier else ARTICLE_STAGE,
                         scores))
    ids = {c.chunk_id for c in named}
    return (first + [h for h in hits if h.chunk.chunk_id not in ids])[:k]


def _hits(stage: str, scores: np.ndarray, keys: np.ndarray, chunks: Mapping[int, Chunk],
          also_dense: bool = False, cosines: np.ndarray | None = None) -> list[Hit]:
    """One stage's ranking for one query: (k,) scores and keys, -1 padded -> hits with that stage's score (and as
    the dense score too where the stage is a dense search, so the abstention threshold reads it). `cosines`: the
    raw dense cosines where `scores` are hub-corrected; the stage score stays the cosine the threshold was
    calibrated on."""
    raw = scores if cosines is None else cosines
    return [Hit(chunks[key], float(s), stage, {stage: float(c), **({Stage.DENSE: float(s)} if also_dense else {})})
            for s, c, key in zip(scores.tolist(), raw.tolist(), keys.tolist(), strict=True)
            if key >= 0 and key in chunks]
