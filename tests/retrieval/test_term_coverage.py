"""Term coverage: the idf-weighted share of a question's terms a passage holds, and the hits that carry it."""

from __future__ import annotations

import math

import pytest
from fakes import retrieve_one
from retrieval_support import HashEmbedder, article_chunk, hash_builder, shared_tokenizer, write_chunk_store

from core.stages import COVERAGE_STAGE
from domains.config import RetrievalConfig
from ingest.store import ChunkStore
from retrieval.faiss_index import FaissIndexSpec
from retrieval.hybrid import HybridRetriever
from retrieval.index_build import bm25_text
from retrieval.term_coverage import TermCoverage


def test_rare_terms_weigh_more_and_unknown_terms_are_left_out() -> None:
    coverage = TermCoverage.from_frequencies({"公司": 90, "茅台": 1, "营收": 10, "缺席": 0}, n_docs=100)
    assert coverage.idf["茅台"] > coverage.idf["营收"] > coverage.idf["公司"] and "缺席" not in coverage.idf
    assert coverage.idf["茅台"] == pytest.approx(math.log(1 + 99.5 / 1.5))
    question = ["茅台", "营收", "公司", "错別字"]  # the last is in no document: not counted either way
    whole = coverage.share(question, {"茅台", "营收", "公司"})
    assert whole == pytest.approx(1.0)
    without_name = coverage.share(question, {"营收", "公司"})  # another company's report
    without_common = coverage.share(question, {"茅台", "营收"})
    assert without_common > 0.9 > without_name
    assert coverage.share(["错別字"], set()) == 1.0  # nothing the corpus knows: nothing to judge by


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory, articles: list[dict]) -> HybridRetriever:
    tmp_path = tmp_path_factory.mktemp("coverage")
    chunk_store_path = write_chunk_store(tmp_path / "chunks.sqlite", [article_chunk(r) for r in articles])
    builder = hash_builder(tmp_path / "index")
    with ChunkStore(chunk_store_path) as source:
        builder.build(source)
    return HybridRetriever(RetrievalConfig(), index_location=tmp_path / "index", embedder=HashEmbedder(),
                           tokenizer=shared_tokenizer(), faiss_spec=FaissIndexSpec()).load()


def test_every_hit_carries_the_share_of_the_question_it_holds(retriever: HybridRetriever) -> None:
    hits = retrieve_one(retriever, "入户盗窃、携带凶器盗窃、扒窃的", 5).hits
    shares = [h.stage_scores[COVERAGE_STAGE] for h in hits]
    assert hits[0].chunk.metadata["article_no"] == "第二百六十四条" and shares[0] == pytest.approx(1.0)
    assert all(0.0 <= s <= 1.0 for s in shares) and min(shares) < shares[0]


def test_the_coverage_is_read_from_the_indexed_terms(retriever: HybridRetriever) -> None:
    hit = retrieve_one(retriever, "盗窃公私财物数额较大", 1).hits[0]
    question = retriever.tokenizer.tokenize("盗窃公私财物数额较大")
    passage = set(retriever.tokenizer.tokenize(bm25_text(hit.chunk)))  # what BM25 indexed: title and text
    bm25 = retriever.index.bm25
    expected = TermCoverage.from_frequencies(bm25.document_frequencies(), len(bm25)).share(question, passage)
    assert hit.stage_scores[COVERAGE_STAGE] == pytest.approx(expected, abs=1e-4)
