"""Build and incrementally update a domain's index from the ingest chunk store.

A full build embeds and tokenises every chunk. An update diffs the chunk store's content hashes against the
current version's, embeds and tokenises only the added / changed chunks, removes the deleted / changed ones
from a copy of the FAISS index, re-indexes BM25 from the stored tokens, and writes a NEW version atomically.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from core.errors import IndexError_
from core.protocols import EmbedRole
from core.records import Chunk
from retrieval.bm25 import Bm25Retriever
from retrieval.build_progress import BuildProgress
from retrieval.docstore import DocRow, SqliteDocstore
from retrieval.document_vectors import DocumentVectors
from retrieval.faiss_index import FaissIndex, FaissIndexSpec, chunk_keys
from retrieval.index_files import BM25_DIR, DOCSTORE_FILE, FAISS_FILE
from retrieval.manifest import EmbedderInfo, IndexManifest
from retrieval.store import IndexStore, disk_full_error, is_disk_full
from retrieval.vector_cache import VectorCache
from retrieval.zh_tokenizer import JiebaTokenizer

log = logging.getLogger(__name__)


class LoadableEmbedder(Protocol):
    """An Embedder that says how it was configured (SentenceTransformerEmbedder; a hash embedder in tests)."""

    name: str
    dim: int
    precision: str
    backend: str

    def load(self) -> LoadableEmbedder: ...

    def embed(self, texts: Sequence[str], role: EmbedRole = "document") -> np.ndarray: ...


class ChunkSource(Protocol):
    """What the index needs from the ingest store (ingest.store.ChunkStore)."""

    def chunks(self) -> Iterable[Chunk]: ...

    def chunk_hashes(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class IndexChange:
    """What an update did (all chunk ids)."""

    version_dir: Path
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    full_build: bool = False
    stats: Mapping[str, Any] = field(default_factory=dict)

    @property
    def touched(self) -> int:
        return len(self.added) + len(self.removed) + len(self.changed)


def bm25_text(chunk: Chunk) -> str:
    """BM25 sees the title too, so "刑法 第二百六十四条" or a law's name finds its articles."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


class IndexBuilder:
    """Writes versions of one domain's index. The embedder must be loaded."""

    def __init__(self, domain: str, store: IndexStore, embedder: LoadableEmbedder,
                 tokenizer: JiebaTokenizer, faiss_spec: FaissIndexSpec, *, vector_cache: VectorCache,
                 pack_dir: Path | None = None, document_embedder: LoadableEmbedder | None = None) -> None:
        self.domain = domain
        self.store = store
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.faiss_spec = faiss_spec
        self.vectors = DocumentVectors(embedder, vector_cache, pack_dir=pack_dir, document_embedder=document_embedder)
        self.progress = BuildProgress(store.root, domain)

    def embedder_info(self) -> EmbedderInfo:
        e = self.embedder
        return EmbedderInfo(name=e.name, dim=e.dim, precision=e.precision, backend=e.backend)

    def build(self, source: ChunkSource) -> IndexChange:
        """A full build of every chunk."""
        hashes = dict(source.chunk_hashes())
        chunks = list(source.chunks())
        if not chunks:
            raise IndexError_(f"domain {self.domain}: the ingest store has no chunks; nothing to index")
        stats: dict[str, Any] = {}
        rows, vectors = self._embed_and_tokenise(chunks, hashes, stats)
        index = FaissIndex(self.embedder.dim, self.faiss_spec)
        index.add(chunk_keys(c.chunk_id for c in chunks), vectors)
        version_dir = self._write(index, rows, stats, parent="")
        ids = tuple(c.chunk_id for c in chunks)
        return IndexChange(version_dir, added=ids, full_build=True, stats=stats)

    def update(self, source: ChunkSource) -> IndexChange:
        """Add / remove only what changed; a full build when there is no usable current version."""
        try:
            directory, manifest = self.store.open(self.embedder_info())
        except IndexError_ as err:
            log.info("full build: %s", err)
            return self.build(source)
        if manifest.index_kind != self.faiss_spec.kind:
            log.info("full build: index kind changes from %s to %s", manifest.index_kind, self.faiss_spec.kind)
            return self.build(source)
        docstore = SqliteDocstore(directory / DOCSTORE_FILE)
        try:
            return self._update_from(directory, manifest, docstore, source)
        finally:
            docstore.close()

    def _update_from(self, directory: Path, manifest: IndexManifest, docstore: SqliteDocstore,
                     source: ChunkSource) -> IndexChange:
        new_hashes = dict(source.chunk_hashes())
        old_hashes = docstore.hashes()
        added = sorted(set(new_hashes) - set(old_hashes))
        removed = sorted(set(old_hashes) - set(new_hashes))
        changed = sorted(c for c in set(new_hashes) & set(old_hashes) if new_hashes[c] != old_hashes[c])
        if not (added or removed or changed):
            log.info("index %s is up to date (%d chunks)", manifest.version, len(old_hashes))
            return IndexChange(directory)
        fresh_ids = set(added) | set(changed)
        fresh = [c for c in source.chunks() if c.chunk_id in fresh_ids]
        stats: dict[str, Any] = {}
        fresh_rows, vectors = self._embed_and_tokenise(fresh, new_hashes, stats)
        index = FaissIndex.load(directory / FAISS_FILE, self.faiss_spec)
        index.remove(chunk_keys([*removed, *changed]))
        index.add(chunk_keys(c.chunk_id for c in fresh), vectors)
        dropped = set(removed) | set(changed)
        rows = [r for r in docstore.rows() if r.chunk.chunk_id not in dropped] + fresh_rows
        version_dir = self._write(index, rows, stats, parent=manifest.version)
        log.info("index update: +%d -%d ~%d chunks", len(added), len(removed), len(changed))
        return IndexChange(version_dir, tuple(added), tuple(removed), tuple(changed), stats=stats)

    def _embed_and_tokenise(self, chunks: Sequence[Chunk], hashes: Mapping[str, str],
                            stats: dict[str, Any]) -> tuple[list[DocRow], np.ndarray]:
        start = time.perf_counter()
        self.tokenizer.load()
        tokens = []
        for i, chunk in enumerate(tqdm(chunks, desc="BM25 tokens", unit="chunk")):
            tokens.append(self.tokenizer.tokenize(bm25_text(chunk)))
            if i % 1000 == 0:
                self.progress.update("tokenize", i, len(chunks))
        stats["tokenize_s"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        try:
            vectors = self.vectors.vectors_for([c.text for c in chunks], self.progress.update)  # (n, dim) float32
        except Exception as err:
            cache = self.vectors.cache.path
            if is_disk_full(err, cache):  # the vector cache commits each slice: a full disk is met here first
                current = self.store.current() or "no version"
                raise disk_full_error(cache, "the vectors embedded so far are kept for the next build to resume "
                                             f"from, and {current} is still current") from err
            raise
        stats["embed_s"] = round(time.perf_counter() - start, 2)
        stats.update(self.vectors.stats)
        rows = [DocRow(c, hashes.get(c.chunk_id, ""), tuple(t)) for c, t in zip(chunks, tokens, strict=True)]
        return rows, vectors

    def _write(self, index: FaissIndex, rows: list[DocRow], stats: dict[str, Any], parent: str) -> Path:
        def fill(tmp: Path) -> IndexManifest:
            start = time.perf_counter()
            index.save(tmp / FAISS_FILE)
            SqliteDocstore.write(tmp / DOCSTORE_FILE, rows)
            bm25 = Bm25Retriever(self.tokenizer)
            bm25.index([r.tokens for r in rows])
            (tmp / BM25_DIR).mkdir()
            bm25.save(tmp / BM25_DIR)
            stats["write_s"] = round(time.perf_counter() - start, 2)
            return IndexManifest(domain=self.domain, version="", created="", embedder=self.embedder_info(),
                                 index_kind=self.faiss_spec.kind, n_chunks=len(rows), parent=parent,
                                 stats=dict(stats))

        if len(index) != len(rows):
            raise IndexError_(f"internal: {len(index)} vectors for {len(rows)} docstore rows")
        self.progress.update("write", len(rows), len(rows), force=True)
        version_dir = self.store.write(fill)
        self.progress.finish()
        return version_dir
