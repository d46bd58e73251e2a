"""ChunkStore: documents, chunks, duplicates and the manifest of one domain in one SQLite file.

Schema (chunks.sqlite):
  documents(doc_id PK, source, title, text, metadata json, content_hash)   -- text is the normalised text
  chunks(chunk_id PK, doc_id, text, start, end, title, metadata json, content_hash)
  duplicates(source, doc_id, kind, duplicate_of, similarity, title, text, metadata, content_hash)
      -- documents dropped as exact / near duplicates or id conflicts, kept whole so that they come back when
      -- the document they duplicate goes away
  manifest(key PK, file_hash, documents, skipped json), meta(key PK, value)
Writes happen inside `transaction()`: a crash rolls back to the last committed run. Readers (the index builder)
use `chunks()`, `chunk_hashes()` etc.; the order of `chunks()` is insertion order, the same on every call.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.errors import IngestError
from core.records import Chunk, Document
from ingest.manifest import ManifestEntry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT NOT NULL,
  text TEXT NOT NULL, metadata TEXT NOT NULL, content_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, text TEXT NOT NULL,
  start INTEGER NOT NULL, "end" INTEGER NOT NULL, title TEXT NOT NULL, metadata TEXT NOT NULL,
  content_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS duplicates (source TEXT NOT NULL, doc_id TEXT NOT NULL, kind TEXT NOT NULL,
  duplicate_of TEXT NOT NULL, similarity REAL NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,
  metadata TEXT NOT NULL, content_hash TEXT NOT NULL, PRIMARY KEY (source, doc_id));
CREATE INDEX IF NOT EXISTS duplicates_by_target ON duplicates(duplicate_of);
CREATE TABLE IF NOT EXISTS manifest (key TEXT PRIMARY KEY, file_hash TEXT NOT NULL, documents INTEGER NOT NULL,
  skipped TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_TABLES = ("documents", "chunks", "duplicates", "manifest", "meta")
SCHEMA_VERSION = 2  # a store of another version is a stale cache: it is dropped and rebuilt by the next ingest
_LOCK_WAIT_S = 120.0  # a second ingest of the same domain waits for the first to commit
_CHUNK_COLUMNS = 'chunk_id, doc_id, text, start, "end", title, metadata'


def chunk_hash(chunk: Chunk, metadata_json: str | None = None) -> str:
    """Changes whenever anything an index keeps about the chunk changes (text, span, title, metadata)."""
    meta = metadata_json if metadata_json is not None else _dump(chunk.metadata)
    payload = "\x1f".join((chunk.text, str(chunk.start), str(chunk.end), chunk.title, meta))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _dump(metadata: Mapping[str, Any]) -> str:
    return json.dumps(dict(metadata), ensure_ascii=False, default=str)


def _load(metadata: str) -> Mapping[str, Any]:
    return MappingProxyType(json.loads(metadata))


class ChunkStore:
    """Read the ingested corpus of a domain; the ingest pipeline also writes through it."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise IngestError(f"no ingested corpus at {self.path}; run `dossier ingest --domain <name>` first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: transactions are explicit (BEGIN/COMMIT in transaction()).
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=_LOCK_WAIT_S)
            self._db.execute("PRAGMA journal_mode=WAL")  # readers keep reading while a run writes
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash still rolls back whole runs
            self._migrate()
        except sqlite3.DatabaseError as err:
            raise IngestError(f"{self.path} is not a valid chunk store ({err}); delete it and re-run ingest") from err

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            for table in _TABLES:
                self._db.execute(f"DROP TABLE IF EXISTS {table}")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ChunkStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def document_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    def chunks(self) -> Iterator[Chunk]:
        for row in self._db.execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks ORDER BY rowid"):
            yield self._chunk(row)

    def chunk(self, chunk_id: str) -> Chunk:
        row = self._db.execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE chunk_id = ?", (chunk_id,)).fetchone()
        if row is None:
            raise KeyError(chunk_id)
        return self._chunk(row)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        rows = self._db.execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE doc_id = ? ORDER BY start", (doc_id,))
        return [self._chunk(row) for row in rows]

    def document(self, doc_id: str) -> Document:
        sql = "SELECT doc_id, text, title, source, metadata FROM documents WHERE doc_id = ?"
        row = self._db.execute(sql, (doc_id,)).fetchone()
        if row is None:
            raise KeyError(doc_id)
        return Document(row[0], row[1], row[2], row[3], _load(row[4]))

    def documents(self) -> Iterator[Document]:
        for row in self._db.execute("SELECT doc_id, text, title, source, metadata FROM documents ORDER BY rowid"):
            yield Document(row[0], row[1], row[2], row[3], _load(row[4]))

    def chunk_hashes(self) -> dict[str, str]:
        """chunk_id -> content hash: diff it against an index to add and delete incrementally."""
        return dict(self._db.execute("SELECT chunk_id, content_hash FROM chunks ORDER BY rowid"))

    def document_hashes(self) -> dict[str, tuple[str, str]]:
        """doc_id -> (source, content hash) of every kept document."""
        rows = self._db.execute("SELECT doc_id, source, content_hash FROM documents")
        return {doc_id: (source, digest) for doc_id, source, digest in rows}

    def duplicates(self) -> dict[str, str]:
        """doc_id of a dropped duplicate -> doc_id of the kept document (e.g. to map eval gold ids)."""
        return dict(self._db.execute("SELECT doc_id, duplicate_of FROM duplicates WHERE kind != 'id_conflict'"))

    def duplicate_rows(self) -> list[tuple[str, str, str, str]]:
        """(source, doc_id, kind, duplicate_of) of every dropped document."""
        return list(self._db.execute("SELECT source, doc_id, kind, duplicate_of FROM duplicates ORDER BY rowid"))

    def duplicate_counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT kind, COUNT(*) FROM duplicates GROUP BY kind"))

    def manifest(self) -> dict[str, ManifestEntry]:
        rows = self._db.execute("SELECT key, file_hash, documents, skipped FROM manifest ORDER BY rowid")
        return {row[0]: ManifestEntry.from_row(*row) for row in rows}

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # -- writing (inside transaction()) ---------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def add_document(self, doc: Document, digest: str, chunks: Iterable[Chunk]) -> int:
        """Insert a document and its chunks; returns the number of chunks."""
        meta = _dump(doc.metadata)  # chunks share their document's metadata: serialise it once
        row = (doc.doc_id, doc.source, doc.title, doc.text, meta, digest)
        self._db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)", row)
        rows = []
        for c in chunks:
            chunk_meta = meta if c.metadata is doc.metadata else _dump(c.metadata)
            rows.append((c.chunk_id, c.doc_id, c.text, c.start, c.end, c.title, chunk_meta, chunk_hash(c, chunk_meta)))
        self._db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def remove_documents(self, doc_ids: Iterable[str]) -> int:
        """Delete documents and their chunks; returns the number of chunks removed."""
        removed = 0
        for doc_id in doc_ids:
            removed += self._db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,)).rowcount
            self._db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        return removed

    def add_duplicate(self, doc: Document, digest: str, kind: str, duplicate_of: str, similarity: float) -> None:
        meta = _dump(doc.metadata)
        row = (doc.source, doc.doc_id, kind, duplicate_of, similarity, doc.title, doc.text, meta, digest)
        self._db.execute("INSERT OR REPLACE INTO duplicates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def remove_duplicates_of_source(self, source: str) -> None:
        self._db.execute("DELETE FROM duplicates WHERE source = ?", (source,))

    def take_orphans(self, removed_doc_ids: Iterable[str]) -> list[tuple[Document, str]]:
        """Delete and return (document, content hash) of the duplicates whose kept document was removed."""
        orphans = []
        sql = "SELECT doc_id, text, title, source, metadata, content_hash FROM duplicates WHERE duplicate_of = ?"
        for target in removed_doc_ids:
            for row in self._db.execute(sql, (target,)).fetchall():
                orphans.append((Document(row[0], row[1], row[2], row[3], _load(row[4])), row[5]))
            self._db.execute("DELETE FROM duplicates WHERE duplicate_of = ?", (target,))
        return orphans

    def put_manifest(self, entry: ManifestEntry) -> None:
        self._db.execute("INSERT OR REPLACE INTO manifest VALUES (?, ?, ?, ?)", entry.to_row())

    def drop_manifest(self, key: str) -> None:
        self._db.execute("DELETE FROM manifest WHERE key = ?", (key,))

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def clear(self) -> None:
        for table in _TABLES:
            self._db.execute(f"DELETE FROM {table}")

    @staticmethod
    def _chunk(row: tuple) -> Chunk:
        return Chunk(row[0], row[1], row[2], row[3], row[4], row[5], _load(row[6]))
