"""A small real hybrid retriever over a slice of the shipped legal corpus, for API tests: the real MiniLM
embedder (registry "all-minilm-l6-v2") for dense cosine, the real jieba + bm25s BM25, fused by RRF (k=60).

Used until / unless the project's `HybridRetriever` index is built in the test; it is real retrieval, not a fake.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence

import numpy as np

from core.records import Chunk, Hit
from domains import DOMAINS_DIR

CRIMINAL_LAW = DOMAINS_DIR / "legal" / "data" / "corpus" / "criminal_law_articles.jsonl.gz"
RRF_K = 60  # Cormack et al. 2009


def legal_slice(articles: range | None = None) -> list[Chunk]:
    """Criminal Law articles (those numbered in `articles`, default all) as whole-article chunks: text == the
    source text, so spans are [0, len)."""
    chunks = []
    with gzip.open(CRIMINAL_LAW, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if articles is not None and row["article_num"] not in articles:
                continue
            title = f"{row['law_name']} {row['article_no']}"
            meta = {"law_name": row["law_name"], "article_no": row["article_no"], "status": row["status"]}
            chunks.append(Chunk(row["doc_id"], row["doc_id"], row["text"], 0, len(row["text"]), title, meta))
    return chunks


class SliceHybridRetriever:
    def __init__(self, chunks: Sequence[Chunk], embedder_name: str = "all-minilm-l6-v2") -> None:
        from retrieval.bm25 import Bm25Retriever
        from retrieval.embedders import SentenceTransformerEmbedder
        from retrieval.zh_tokenizer import JiebaTokenizer

        self.chunks = list(chunks)
        self.embedder = SentenceTransformerEmbedder(embedder_name, show_progress=False).load()
        self.vectors = self.embedder.embed([c.text for c in self.chunks], role="document")  # (n, dim)
        tokenizer = JiebaTokenizer().load()
        self.bm25 = Bm25Retriever(tokenizer)
        self.bm25.index([tokenizer.tokenize(c.title + " " + c.text) for c in self.chunks])

    def retrieve(self, query: str, k: int, filters: dict | None = None) -> list[Hit]:
        n = len(self.chunks)
        cos = self.vectors @ self.embedder.embed([query], role="query")[0]  # (n,)
        dense_rank = np.argsort(-cos)[: min(50, n)]
        scores, positions = self.bm25.search([query], min(50, n))
        bm25 = {int(p): float(s) for p, s in zip(positions[0], scores[0], strict=True) if p >= 0}
        fused: dict[int, float] = {}
        for rank, pos in enumerate(dense_rank):
            fused[int(pos)] = fused.get(int(pos), 0.0) + 1.0 / (RRF_K + rank + 1)
        for rank, pos in enumerate(bm25):
            fused[pos] = fused.get(pos, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused, key=fused.get, reverse=True)
        if filters:
            best = [p for p in best if all(self.chunks[p].metadata.get(f) == v for f, v in filters.items())]
        return [
            Hit(self.chunks[p], fused[p], "rrf", {"dense": float(cos[p]), "bm25": bm25.get(p, 0.0), "rrf": fused[p]})
            for p in best[:k]
        ]
