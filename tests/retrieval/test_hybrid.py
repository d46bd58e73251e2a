"""HybridRetriever over a real index (FAISS, bm25s, SQLite docstore) with the hash embedder as the dense model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fakes import hits_of, retrieve_one
from retrieval_support import HashEmbedder, article_chunk, hash_builder, shared_tokenizer, write_chunk_store

from core.errors import ConfigError
from domains.config import RetrievalConfig
from ingest.store import ChunkStore
from retrieval.faiss_index import FaissIndexSpec
from retrieval.hybrid import HybridRetriever
from retrieval.langchain_adapter import LangchainRetriever

THEFT = "入户盗窃、携带凶器盗窃、扒窃的"


@pytest.fixture(scope="module", params=["flat", "hnsw"])
def index_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               articles: list[dict]) -> tuple[Path, str]:
    tmp_path = tmp_path_factory.mktemp("hybrid")
    chunk_store_path = write_chunk_store(tmp_path / "chunks.sqlite", [article_chunk(r) for r in articles])
    root = tmp_path / "index"
    builder = hash_builder(root, kind=request.param)
    with ChunkStore(chunk_store_path) as source:
        builder.build(source)
    return root, request.param


def _retriever(index: tuple[Path, str], **cfg: object) -> HybridRetriever:
    root, kind = index
    return HybridRetriever(replace(RetrievalConfig(), **cfg), index_location=root, embedder=HashEmbedder(),
                           tokenizer=shared_tokenizer(), faiss_spec=FaissIndexSpec(kind=kind)).load()


def test_hybrid_hits_carry_every_stage_score(index_root: tuple[Path, str]) -> None:
    result = retrieve_one(_retriever(index_root), THEFT, 5)
    assert len(result.hits) == 5 and result.hits[0].chunk.metadata["article_no"] == "第二百六十四条"
    top = result.hits[0]
    assert top.retriever == "rrf" and {"dense", "bm25", "rrf"} <= set(top.stage_scores)
    assert 0.0 < top.stage_scores["dense"] <= 1.0001 and top.stage_scores["bm25"] > 0


def test_filters_still_return_k_hits(index_root: tuple[Path, str], articles: list[dict]) -> None:
    retriever = _retriever(index_root, dense_k=5, sparse_k=5)
    chapter = articles[0]["chapter"]  # about 12 articles of ~125: far beyond the top-5 of an unfiltered search
    hits = hits_of(retriever, THEFT, 8, filters={"chapter": chapter})
    assert len(hits) == 8 and all(h.chunk.metadata["chapter"] == chapter for h in hits)
    both = hits_of(retriever, THEFT, 3, filters={"article_no": ["第二百六十四条", "第二百六十三条"]})
    assert {h.chunk.metadata["article_no"] for h in both} == {"第二百六十四条", "第二百六十三条"}


def test_config_filters_apply_and_queries_override(index_root: tuple[Path, str]) -> None:
    retriever = _retriever(index_root, filters={"article_no": "第一条"})
    assert [h.chunk.metadata["article_no"] for h in hits_of(retriever, THEFT, 5)] == ["第一条"]
    assert hits_of(retriever, THEFT, 1, filters={"article_no": "第二百六十四条"})[0].chunk.metadata["article_no"] \
        == "第二百六十四条"


def test_batch_matches_single_and_langchain(index_root: tuple[Path, str]) -> None:
    retriever = _retriever(index_root)
    queries = [THEFT, "以暴力、胁迫方法抢劫公私财物"]
    results = retriever.retrieve(queries, 4)
    assert [r.query for r in results] == queries  # one Retrieval record per query, in order, with stage timings
    assert all({"dense_embed", "dense_search", "bm25", "fusion", "docstore"} <= set(r.timings_ms) for r in results)
    batch = [list(r.hits) for r in results]
    assert [[h.chunk.chunk_id for h in hits] for hits in batch] == \
        [[h.chunk.chunk_id for h in hits_of(retriever, q, 4)] for q in queries]
    docs = LangchainRetriever(retriever=retriever, k=2, filters={"law_name": "中华人民共和国刑法"}).invoke(THEFT)
    assert [d.metadata["chunk_id"] for d in docs] == [h.chunk.chunk_id for h in batch[0][:2]]
    assert docs[0].metadata["stage_scores"]["rrf"] == docs[0].metadata["score"]


def test_unknown_stages_are_refused(index_root: tuple[Path, str]) -> None:
    with pytest.raises(ConfigError, match="valid stages are dense, bm25, rerank"):
        _retriever(index_root, stages=("dense", "colbert"))
    with pytest.raises(ConfigError, match="use dense and/or bm25"):
        _retriever(index_root, stages=("rerank",))
