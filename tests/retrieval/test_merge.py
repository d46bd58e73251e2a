"""Merging the domain's hits with a private collection's (retrieval/merge.py): by rank, equal ranks by the score
both lists share."""

from __future__ import annotations

from fakes import fixed_retriever

from core.records import Chunk, Hit
from retrieval.merge import MergedRetriever, interleave


def hit(chunk_id: str, **scores: float) -> Hit:
    chunk = Chunk(chunk_id, chunk_id, f"text of {chunk_id}", 0, 10)
    return Hit(chunk, next(iter(scores.values())), next(iter(scores)), scores)


def ids(hits: list[Hit]) -> list[str]:
    return [h.chunk.chunk_id for h in hits]


def test_equal_ranks_go_to_the_higher_dense_cosine():
    corpus = [hit("c1", zscore=2.0, dense=0.40), hit("c2", zscore=1.0, dense=0.35)]
    uploaded = [hit("u1", zscore=0.9, dense=0.80), hit("u2", zscore=0.1, dense=0.10)]
    assert ids(interleave(corpus, uploaded, 4)) == ["u1", "c1", "c2", "u2"]


def test_a_weak_upload_takes_every_other_place_at_most():
    corpus = [hit(f"c{i}", dense=0.9 - i / 10) for i in range(4)]
    assert ids(interleave(corpus, [hit("u1", dense=0.05)], 3)) == ["c0", "u1", "c1"]


def test_the_reranker_score_wins_over_the_cosine_and_no_shared_score_keeps_the_corpus_first():
    corpus = [hit("c1", rerank=0.2, dense=0.9)]
    uploaded = [hit("u1", rerank=0.7, dense=0.1)]
    assert ids(interleave(corpus, uploaded, 2)) == ["u1", "c1"]
    assert ids(interleave([hit("c1", bm25=3.0)], [hit("u1", dense=0.9)], 2)) == ["c1", "u1"]


def test_merged_retriever_keeps_hits_whole_and_names_the_collection_timings():
    corpus = [hit("c1", dense=0.3)]
    uploaded = [hit("u1", dense=0.6)]
    found = MergedRetriever(fixed_retriever(corpus), fixed_retriever(uploaded)).retrieve(["q"], k=5)[0]
    assert ids(list(found.hits)) == ["u1", "c1"]
    assert found.hits[0] is uploaded[0]  # stage scores untouched: abstention reads the same score
    assert "collection" in found.timings_ms
