"""The files of one index version and opening them together: FAISS, BM25 state and the chunk docstore."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from retrieval.bm25 import Bm25Retriever
from retrieval.docstore import SqliteDocstore
from retrieval.faiss_index import FaissIndex, FaissIndexSpec
from retrieval.manifest import EmbedderInfo, IndexManifest
from retrieval.store import CURRENT, IndexStore, open_version_dir
from retrieval.zh_tokenizer import JiebaTokenizer

log = logging.getLogger(__name__)

FAISS_FILE = "dense.faiss"
BM25_DIR = "bm25"
DOCSTORE_FILE = "docstore.sqlite"


@dataclass(frozen=True, slots=True)
class OpenIndex:
    """One verified index version, ready to search."""

    directory: Path
    manifest: IndexManifest
    dense: FaissIndex
    bm25: Bm25Retriever
    docstore: SqliteDocstore

    def close(self) -> None:
        self.docstore.close()


def open_index(location: Path, expected: EmbedderInfo | None, tokenizer: JiebaTokenizer,
               spec: FaissIndexSpec) -> OpenIndex:
    """`location` is an index root (with a `current` pointer) or one version directory."""
    if (location / CURRENT).is_file():
        directory, manifest = IndexStore(location).open(expected)
    else:
        directory, manifest = open_version_dir(location, expected)
    if manifest.index_kind != spec.kind:
        log.info("index %s is %s (config says %s): searching it as built", directory, manifest.index_kind, spec.kind)
        spec = FaissIndexSpec(kind=manifest.index_kind)  # type: ignore[arg-type]
    tokenizer.load()
    dense = FaissIndex.load(directory / FAISS_FILE, spec)
    bm25 = Bm25Retriever.load(directory / BM25_DIR, tokenizer)
    docstore = SqliteDocstore(directory / DOCSTORE_FILE)
    log.info("opened index %s: %d chunks, %s, embedder %s", directory, manifest.n_chunks, manifest.index_kind,
             manifest.embedder.name)
    return OpenIndex(directory, manifest, dense, bm25, docstore)
