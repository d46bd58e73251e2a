"""A caller's own documents for one domain (issue 15, "your own documents"): uploaded files ingested and indexed
exactly as `dossier ingest` and `dossier index build` treat the domain's corpus, in a folder of their own:

  <root>/files/<file_id>/<name>   the uploaded files, the scope of every ingest run (ingest/sources.py)
  <root>/ingest/chunks.sqlite     ingest's store: the same loaders, IngestLimits, normalisation, dedup and chunking
  <root>/index/v0001/.., current  retrieval/store.py's versioned store: a version is written whole or not at all

`CollectionIndexer.sync` brings store and index in line with the files folder: one incremental ingest run (new files
parsed, removed ones dropped, a bad file skipped with its reason, the others unharmed), then an incremental index
update with the domain's own embedder and tokenizer (shared with the loaded domain retriever, not loaded twice),
vectors through the content-keyed cache (retrieval/document_vectors.py), so a file uploaded again, or one
whose chunks another user's upload already embedded, costs no embedding. A failed build leaves the previous version
current. `CollectionRetriever` searches the current version and shows each hit as its file: title = the file name,
metadata `collection`, `file_id`, `file_name`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.records import Hit, Retrieval
from domains.config import DomainConfig
from ingest.limits import IngestLimits
from ingest.pipeline import STORE_FILE, run_ingest
from ingest.store import ChunkStore
from rag.build_retrieval import build_document_embedder, open_vector_cache
from retrieval.faiss_index import FaissIndexSpec
from retrieval.hybrid import HybridRetriever
from retrieval.index_build import IndexBuilder
from retrieval.store import IndexStore

log = logging.getLogger(__name__)

# Exact search: a collection's few thousand chunks take microseconds, and an IVF index cannot be trained on a handful
FLAT = FaissIndexSpec(kind="flat")
KEEP_VERSIONS = 2  # the current version and the one before: a reader that opened it a moment ago still finds it
FILES = "files"


@dataclass(frozen=True, slots=True)
class CollectionLayout:
    root: Path

    @property
    def files(self) -> Path:
        return self.root / FILES

    @property
    def ingest(self) -> Path:
        return self.root / "ingest"

    @property
    def index(self) -> Path:
        return self.root / "index"

    def file_dir(self, file_id: str) -> Path:
        return self.files / file_id


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What one sync made of one file: its chunks in the index, or why none (`error`: nothing could be read;
    `duplicate_of`: read, but its text is already in the collection, as that file)."""

    file_id: str
    chunks: int = 0
    error: str = ""
    duplicate_of: str = ""


def file_id_of(doc_or_chunk_id: str) -> str | None:
    """The file id in a document or chunk id of a collection: ingest names a file's document by its path under the
    collection root, `files/<file_id>/<name>`, and its chunks `<that>#c<n>` (ingest/chunking.py)."""
    parts = doc_or_chunk_id.split("/", 2)
    return parts[1] if len(parts) == 3 and parts[0] == FILES else None


class CollectionIndexer:
    """Syncs the collections of one domain with the domain's loaded retriever's models; the embedder of new
    documents is the one `dossier index build` uses (rag/build_retrieval.py: `embedding.document_backend`), made
    once and loaded at the first chunk no cache holds."""

    def __init__(self, cfg: DomainConfig, base: HybridRetriever) -> None:
        self.cfg = cfg
        self.base = base
        self.document_embedder = build_document_embedder(cfg, base.embedder)

    def sync(self, layout: CollectionLayout, limits: IngestLimits,
             on_stage: Callable[[str], None] = lambda stage: None) -> dict[str, FileOutcome]:
        """Ingest the files folder, then update the index; the outcome of every file in the folder, by file id.
        Raises what the index build raises (the previous version stays current)."""
        layout.files.mkdir(parents=True, exist_ok=True)
        run_ingest(self.cfg, [layout.files], workspace=layout.ingest, progress=False, limits=limits)
        on_stage("ingested")
        with ChunkStore(layout.ingest / STORE_FILE) as store:
            outcomes = _outcomes(store, layout.files.resolve())
            if len(store):  # an empty collection keeps its last version; its files are gone, so none of it shows
                self._builder(layout).update(store)
        on_stage("indexed")
        return outcomes

    def _builder(self, layout: CollectionLayout) -> IndexBuilder:
        embedder = self.base.embedder.load()  # loaded already by the domain's retriever: the same model object
        return IndexBuilder(self.cfg.name, IndexStore(layout.index, keep=KEEP_VERSIONS), embedder,
                            self.base.tokenizer, FLAT, vector_cache=open_vector_cache(embedder),
                            document_embedder=self.document_embedder)


def _outcomes(store: ChunkStore, files_root: Path) -> dict[str, FileOutcome]:
    chunks: dict[str, int] = {}
    for chunk_id in store.chunk_hashes():
        if (file_id := file_id_of(chunk_id)) is not None:
            chunks[file_id] = chunks.get(file_id, 0) + 1
    duplicates = {source: file_id_of(of) or "" for source, _, kind, of in store.duplicate_rows()
                  if kind != "id_conflict"}
    outcomes = {}
    for key, entry in store.manifest().items():
        path = Path(key)
        if not path.is_relative_to(files_root):
            continue
        file_id = path.relative_to(files_root).parts[0]
        error = "" if entry.documents else "; ".join(s.reason for s in entry.skipped) or "no text in file"
        duplicate = duplicates.get(key, "") if entry.documents and not chunks.get(file_id) else ""
        outcomes[file_id] = FileOutcome(file_id, chunks.get(file_id, 0), error, duplicate)
    return outcomes


def open_collection_retriever(base: HybridRetriever, layout: CollectionLayout) -> HybridRetriever:
    """The domain's retriever over the collection's current index version, sharing the domain's loaded models.
    The domain's default filter is dropped: it names corpus metadata (a statute's status) no uploaded file has."""
    return HybridRetriever(replace(base.cfg, filters={}), index_location=layout.index, embedder=base.embedder,
                           tokenizer=base.tokenizer, faiss_spec=FLAT, reranker=base.reranker,
                           stages=base.stages).load()


class CollectionRetriever:
    """`retrieve` over one collection (core.protocols.Retriever), keeping only hits of `names`' files (those
    ready: a file deleted a moment ago, or still being indexed, is never shown) and showing each as its file."""

    def __init__(self, inner: HybridRetriever, names: Mapping[str, str]) -> None:
        self.inner = inner
        self.names = dict(names)  # file id -> the name it was uploaded as

    def retrieve(self, queries: Sequence[str], k: int | None = None,
                 filters: Mapping[str, Any] | None = None) -> list[Retrieval]:
        found = self.inner.retrieve(queries, k, filters)
        return [replace(r, hits=tuple(h for h in map(self._shown, r.hits) if h is not None)) for r in found]

    def _shown(self, hit: Hit) -> Hit | None:
        file_id = file_id_of(hit.chunk.doc_id)
        if file_id not in self.names:
            return None
        name = self.names[file_id]
        metadata = {**hit.chunk.metadata, "collection": True, "file_id": file_id, "file_name": name}
        return replace(hit, chunk=replace(hit.chunk, title=name, metadata=metadata))
