"""Retrieval test support: real statute text, a real ingest chunk store, and a bag-of-bigrams hash embedder (a
protocol fake for the units that are not about embedding; the end-to-end tests use the real MiniLM).

A module of its own (not conftest.py): several test folders have a conftest, and `from conftest import` would
pick whichever was imported first."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.records import Chunk, Document
from domains import DOMAINS_DIR

CRIMINAL_LAW = DOMAINS_DIR / "legal" / "data" / "corpus" / "criminal_law_articles.jsonl.gz"
METADATA_FIELDS = ("law_name", "article_no", "article_num", "status", "chapter")


def read_articles(limit: int, skip: int = 0) -> list[dict]:
    with gzip.open(CRIMINAL_LAW, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return rows[skip : skip + limit]


def article_chunk(row: dict, text: str | None = None) -> Chunk:
    text = row["text"] if text is None else text
    meta = {k: row[k] for k in METADATA_FIELDS}
    return Chunk(
        f"{row['doc_id']}#0", row["doc_id"], text, 0, len(text), f"{row['law_name']} {row['article_no']}", meta
    )


def write_chunk_store(path: Path, chunks: Sequence[Chunk]) -> Path:
    """A real ingest ChunkStore holding one document per chunk."""
    from ingest.store import ChunkStore

    store = ChunkStore(path, create=True)
    with store.transaction():
        store.clear()
        for c in chunks:
            doc = Document(c.doc_id, c.text, c.title, "test", c.metadata)
            store.add_document(doc, hashlib.sha256(c.text.encode()).hexdigest(), [c])
    store.close()
    return path


_TOKENIZER = None


def shared_tokenizer():  # noqa: ANN201
    """One loaded plain-jieba tokenizer for the whole run (loading jieba's dictionary takes a second or two)."""
    global _TOKENIZER
    if _TOKENIZER is None:
        from retrieval.zh_tokenizer import JiebaTokenizer

        _TOKENIZER = JiebaTokenizer().load()
    return _TOKENIZER


class HashEmbedder:
    """Character bigrams hashed into 64 dims, L2-normalised: similar text -> similar vectors, no model."""

    def __init__(self, name: str = "hash-bigrams", dim: int = 64) -> None:
        self.name, self.dim, self.precision, self.backend = name, dim, "fp32", "torch"
        self.calls: list[int] = []

    def load(self) -> HashEmbedder:
        return self

    def embed(self, texts: Sequence[str], role: str = "document") -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for a, b in zip(text, text[1:], strict=False):
                out[i, int(hashlib.md5((a + b).encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out / norms


def hash_builder(root: Path, embedder: HashEmbedder | None = None, *, kind: str = "flat",
                 pack_dir: Path | None = None):  # noqa: ANN201
    """An IndexBuilder over `root` with the hash embedder and a vector cache of its own beside the index."""
    from retrieval.faiss_index import FaissIndexSpec
    from retrieval.index_build import IndexBuilder
    from retrieval.store import IndexStore
    from retrieval.vector_cache import VectorCache, document_identity

    embedder = embedder or HashEmbedder()
    cache = VectorCache.for_identity(root.parent / "vectors", document_identity(embedder), embedder.dim)
    return IndexBuilder("legal", IndexStore(root), embedder, shared_tokenizer(), FaissIndexSpec(kind=kind),
                        vector_cache=cache, pack_dir=pack_dir)
