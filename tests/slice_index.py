"""A real index over a slice of the shipped legal corpus for API tests: Criminal Law articles written to a real
ingest chunk store, indexed by the project's IndexBuilder (real MiniLM embedder "all-minilm-l6-v2", FAISS,
jieba + bm25s), served by the real HybridRetriever from `rag.build_retrieval`."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import replace
from pathlib import Path

from core.records import Chunk, Document
from domains import DOMAINS_DIR
from domains.config import DomainConfig

CRIMINAL_LAW = DOMAINS_DIR / "legal" / "data" / "corpus" / "criminal_law_articles.jsonl.gz"
META = ("law_name", "article_no", "article_num", "status", "chapter")


def legal_slice(articles: range | None = None) -> list[Chunk]:
    """Criminal Law articles (those numbered in `articles`, default all) as whole-article chunks: text == the
    source text, so spans are [0, len)."""
    chunks = []
    with gzip.open(CRIMINAL_LAW, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if articles is None or row["article_num"] in articles:
                title = f"{row['law_name']} {row['article_no']}"
                meta = {k: row[k] for k in META}
                chunks.append(Chunk(f"{row['doc_id']}#0", row["doc_id"], row["text"], 0, len(row["text"]), title,
                                    meta))
    return chunks


def minilm_cfg(cfg: DomainConfig) -> DomainConfig:
    """The domain with MiniLM (tests fetch it in seconds). MiniLM reads Chinese as [UNK]s, so the shipped
    dense-heavy fusion would follow its noise: these tests fuse by RRF 1:1, where BM25 carries the ranking. The
    domain's question bank, gate and scope router are EmbeddingGemma's, so they are left out
    (tests/retrieval/test_question_bank.py makes a bank and a router, tests/retrieval/test_domain_gate.py a gate)."""
    retrieval = replace(cfg.retrieval, fusion="rrf", dense_weight=1.0, sparse_weight=1.0, question_bank="",
                        domain_gate="", scope_router="", hub_weight=0.0)
    return replace(cfg, models=replace(cfg.models, embedder="all-minilm-l6-v2"),
                   embedding=replace(cfg.embedding, batch_size=64), retrieval=retrieval)


def build_slice_index(cfg: DomainConfig, chunks: list[Chunk], workdir: Path) -> Path:
    """Ingest store -> index version under `workdir/index`; returns that index root."""
    from ingest.store import ChunkStore
    from rag.build_retrieval import build_index_builder

    store = ChunkStore(workdir / "chunks.sqlite", create=True)
    with store.transaction():
        for c in chunks:
            doc = Document(c.doc_id, c.text, c.title, "criminal_law_articles.jsonl.gz", c.metadata)
            store.add_document(doc, hashlib.sha256(c.text.encode()).hexdigest(), [c])
    try:
        build_index_builder(cfg, root=workdir / "index").build(store)
    finally:
        store.close()
    return workdir / "index"
