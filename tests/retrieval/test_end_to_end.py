"""Ingest store -> `dossier index build` -> `dossier search`, with the real MiniLM, FAISS, jieba and bm25s."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from fakes import hits_of, retrieve_one
from retrieval_support import article_chunk, write_chunk_store

from cli import main
from core.paths import ingest_dir
from domains import load_domain
from ingest.store import ChunkStore
from rag.build_retrieval import build_index_builder, build_retriever
from retrieval.langchain_adapter import LangchainRetriever


@pytest.fixture(scope="module")
def legal_home(tmp_path_factory: pytest.TempPathFactory, minilm_dir: str, articles: list[dict]) -> Path:
    """DOSSIER_HOME with a small ingested slice of the Criminal Law, indexed once with MiniLM (via the CLI)."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOSSIER_HOME", str(home))
        write_chunk_store(ingest_dir("legal") / "chunks.sqlite", [article_chunk(r) for r in articles])
        mp.setattr("domains.load_domain", lambda name: _cfg(minilm_dir))
        assert main(["index", "build", "--domain", "legal"]) == 0
    return home


@pytest.fixture()
def home(legal_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOSSIER_HOME", str(legal_home))
    return legal_home


def _cfg(minilm_dir: str):  # noqa: ANN202
    """MiniLM reads Chinese as [UNK]s: fuse by RRF 1:1 here (BM25 carries), not the shipped dense-heavy z-score."""
    cfg = load_domain("legal")
    retrieval = replace(cfg.retrieval, fusion="rrf", dense_weight=1.0, sparse_weight=1.0, question_bank="",
                        domain_gate="", scope_router="", hub_weight=0.0)
    return replace(cfg, models=replace(cfg.models, embedder="all-minilm-l6-v2"),
                   embedding=replace(cfg.embedding, batch_size=64), retrieval=retrieval)


def test_zscore_fusion_end_to_end(home: Path, minilm_dir: str) -> None:
    """The shipped fusion over a real index; with BM25 weighted up (MiniLM is noise on Chinese) BM25 carries it."""
    cfg = _cfg(minilm_dir)
    cfg = replace(cfg, retrieval=replace(cfg.retrieval, fusion="zscore", dense_weight=0.2, sparse_weight=1.0))
    result = retrieve_one(build_retriever(cfg), "入户盗窃 携带凶器盗窃 扒窃", 5)
    assert [h.chunk.metadata["article_no"] for h in result.hits[:1]] == ["第二百六十四条"]
    assert all(h.retriever == "zscore" and "zscore" in h.stage_scores for h in result.hits)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert "fusion" in result.timings_ms


def test_build_and_search_hybrid(home: Path, minilm_dir: str, articles: list[dict]) -> None:
    cfg = _cfg(minilm_dir)
    with ChunkStore(ingest_dir("legal") / "chunks.sqlite") as source:
        change = build_index_builder(cfg).update(source)
    assert change.touched == 0 and len(build_retriever(cfg, stages=["bm25"]).index.docstore) == len(articles)

    retriever = build_retriever(cfg)
    result = retrieve_one(retriever, "入户盗窃 携带凶器盗窃 扒窃", 5)
    # MiniLM turns most Chinese into [UNK], so its dense ranking is near noise: BM25 carries the fused top 3
    top = next(h for h in result.hits[:3] if h.chunk.metadata["article_no"] == "第二百六十四条")
    assert all(h.retriever == "rrf" for h in result.hits) and {"bm25", "rrf"} <= set(top.stage_scores)
    assert any("dense" in h.stage_scores for h in result.hits)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert {"dense_embed", "dense_search", "bm25", "fusion"} <= set(result.timings_ms)
    dense_scores = [h.stage_scores["dense"] for h in result.hits if "dense" in h.stage_scores]
    assert dense_scores and all(-1.0 <= s <= 1.0001 for s in dense_scores)

    wanted = {"article_no": ["第二百六十三条", "第二百六十六条"]}
    hits = hits_of(retriever, "盗窃", 5, filters=wanted)
    assert len(hits) == 2 and {h.chunk.metadata["article_no"] for h in hits} == set(wanted["article_no"])
    assert hits_of(retriever, "盗窃", 5, filters={"status": "已废止"}) == []

    batch = [list(r.hits) for r in retriever.retrieve(["入户盗窃 扒窃", "抢劫公私财物"], 3)]
    assert [len(b) for b in batch] == [3, 3]
    assert [h.chunk.chunk_id for h in batch[0]] == [h.chunk.chunk_id for h in hits_of(retriever, "入户盗窃 扒窃", 3)]

    docs = LangchainRetriever(retriever=retriever, k=3).invoke("入户盗窃 携带凶器盗窃 扒窃")
    assert [d.metadata["chunk_id"] for d in docs] == [h.chunk.chunk_id for h in result.hits[:3]]
    assert docs[0].page_content == result.hits[0].chunk.text and docs[0].metadata["score"] == result.hits[0].score


def test_single_stages_and_bad_stage(home: Path, minilm_dir: str) -> None:
    cfg = _cfg(minilm_dir)
    bm25_hits = hits_of(build_retriever(cfg, stages=["bm25"]), "以暴力、胁迫方法抢劫公私财物", 3)
    assert bm25_hits[0].retriever == "bm25" and bm25_hits[0].chunk.metadata["article_no"] == "第二百六十三条"
    dense_hits = hits_of(build_retriever(cfg, stages=["dense"]), "robbery", 3)
    assert len(dense_hits) == 3 and set(dense_hits[0].stage_scores) == {"dense"}
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="reranker"):
        build_retriever(cfg, stages=["dense", "rerank"], load=False)


def test_cli_build_then_search(home: Path, minilm_dir: str, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("domains.load_domain", lambda name: _cfg(minilm_dir))
    assert main(["index", "build", "--domain", "legal"]) == 0
    assert "update" in capsys.readouterr().out  # built by the fixture: an update that finds nothing to do
    assert main(["index", "status", "--domain", "legal"]) == 0
    assert "* v0001" in capsys.readouterr().out
    assert main(["index", "build", "--domain", "legal", "--if-missing"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["search", "--domain", "legal", "入户盗窃 扒窃", "-k", "3", "--json",
                 "--filter", "law_name=中华人民共和国刑法"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["hits"]) == 3 and any(h["title"].endswith("第二百六十四条") for h in out["hits"])
    assert {"chunk_id", "doc_id", "stage_scores", "text"} <= set(out["hits"][0])
    assert main(["search", "--domain", "legal", "抢劫", "--stages", "bm25"]) == 0
    assert "bm25=" in capsys.readouterr().out


def test_rerank_stage_with_a_tiny_cross_encoder(home: Path, minilm_dir: str, tiny_classifier_dir: Path) -> None:
    cfg = _cfg(minilm_dir)
    cfg = replace(cfg, models=replace(cfg.models, reranker=str(tiny_classifier_dir)),
                  retrieval=replace(cfg.retrieval, rerank_top_n=8))
    result = retrieve_one(build_retriever(cfg, stages=["dense", "bm25", "rerank"]), "入户盗窃 扒窃", 5)
    assert len(result.hits) == 5 and "rerank" in result.timings_ms
    assert all(h.retriever == "rerank" and {"rrf", "rerank"} <= set(h.stage_scores) for h in result.hits)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
