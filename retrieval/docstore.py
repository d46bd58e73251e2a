"""The chunk docstore of one index version: SQLite, one row per chunk.

A row holds the chunk (text, offsets, title, metadata as JSON), its FAISS key (`chunk_key(chunk_id)`), its
position in the BM25 index, the ingest content hash (for incremental updates) and its BM25 tokens (so an update
re-indexes BM25 without re-tokenising).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from core.records import Chunk
from retrieval.faiss_index import chunk_key
from retrieval.filters import MetadataFilter

_SCHEMA = """
CREATE TABLE chunks (
    key INTEGER PRIMARY KEY, pos INTEGER NOT NULL UNIQUE, chunk_id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL,
    text TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, title TEXT NOT NULL,
    metadata TEXT NOT NULL, hash TEXT NOT NULL, tokens TEXT NOT NULL
);
"""
_COLUMNS = "key, chunk_id, doc_id, text, start, end, title, metadata"
_TOKEN_SEP = "\x1f"  # unit separator: tokens never contain it
CHUNK_CACHE = 50_000  # chunks kept in memory after a lookup (~1 KB each)


@dataclass(frozen=True, slots=True)
class DocRow:
    """What the index keeps per chunk besides its vector."""

    chunk: Chunk
    hash: str
    tokens: tuple[str, ...]


class SqliteDocstore:
    """Read access to a docstore file; `write()` creates one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self._keys_by_pos: np.ndarray | None = None
        self._cache: dict[int, Chunk] = {}

    @staticmethod
    def write(path: Path, rows: Iterable[DocRow]) -> int:
        """Create the docstore at `path` (rows in BM25 position order); returns the row count."""
        db = sqlite3.connect(path)
        try:
            db.executescript(_SCHEMA)
            count = 0
            for pos, row in enumerate(rows):
                c = row.chunk
                db.execute(
                    "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (chunk_key(c.chunk_id), pos, c.chunk_id, c.doc_id, c.text, c.start, c.end, c.title,
                     json.dumps(dict(c.metadata), ensure_ascii=False), row.hash, _TOKEN_SEP.join(row.tokens)),
                )
                count += 1
            db.commit()
        finally:
            db.close()
        return count

    def __len__(self) -> int:
        return len(self.keys_by_position())

    def close(self) -> None:
        self._db.close()

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def keys_by_position(self) -> np.ndarray:
        """(n,) int64: the FAISS key of the chunk at each BM25 position."""
        if self._keys_by_pos is None:
            rows = self._query("SELECT key FROM chunks ORDER BY pos")
            self._keys_by_pos = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return self._keys_by_pos

    def chunks(self, keys: Sequence[int]) -> dict[int, Chunk]:
        """key -> Chunk for the keys that exist (a version never changes, so chunks read once are kept)."""
        keys = [int(k) for k in keys]
        out = {k: self._cache[k] for k in keys if k in self._cache}
        missing = [k for k in keys if k not in out]
        for start in range(0, len(missing), 500):  # SQLite caps the number of bound parameters
            batch = missing[start : start + 500]
            marks = ",".join("?" * len(batch))
            for row in self._query(f"SELECT {_COLUMNS} FROM chunks WHERE key IN ({marks})", batch):
                out[row[0]] = _chunk(row)
        if len(self._cache) > CHUNK_CACHE:
            self._cache.clear()
        self._cache.update((k, out[k]) for k in missing if k in out)
        return out

    def tokens(self, keys: Sequence[int]) -> dict[int, frozenset[str]]:
        """key -> the chunk's BM25 terms, as indexed (for the term coverage of the hits a query returns)."""
        keys = [int(k) for k in keys]
        out: dict[int, frozenset[str]] = {}
        for start in range(0, len(keys), 500):
            batch = keys[start : start + 500]
            marks = ",".join("?" * len(batch))
            for key, tokens in self._query(f"SELECT key, tokens FROM chunks WHERE key IN ({marks})", batch):
                out[key] = frozenset(tokens.split(_TOKEN_SEP)) if tokens else frozenset()
        return out

    def keys_by_doc(self) -> dict[str, list[int]]:
        """doc_id -> the keys of its chunks, in position order (a question bank votes for documents)."""
        out: dict[str, list[int]] = {}
        for key, doc_id in self._query("SELECT key, doc_id FROM chunks ORDER BY pos"):
            out.setdefault(doc_id, []).append(key)
        return out

    def chunk_by_id(self, chunk_id: str) -> Chunk | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM chunks WHERE chunk_id = ?", (chunk_id,))
        return _chunk(rows[0]) if rows else None

    def hashes(self) -> dict[str, str]:
        """chunk_id -> ingest content hash."""
        return dict(self._query("SELECT chunk_id, hash FROM chunks"))

    def rows(self) -> Iterator[DocRow]:
        """Every row in position order (for copying into a new version)."""
        for row in self._query(f"SELECT {_COLUMNS}, hash, tokens FROM chunks ORDER BY pos"):
            yield DocRow(_chunk(row[:8]), row[8], tuple(row[9].split(_TOKEN_SEP)) if row[9] else ())

    def metadata_by_key(self) -> Iterator[tuple[int, dict]]:
        """(key, metadata) of every chunk, for catalogues built over the metadata (retrieval/article_lookup.py)."""
        for key, metadata in self._query("SELECT key, metadata FROM chunks"):
            yield key, json.loads(metadata)

    def positions_matching(self, where: MetadataFilter) -> np.ndarray:
        """(n,) bool over BM25 positions: which chunks pass the filter."""
        rows = self._query("SELECT pos, chunk_id, doc_id, title, metadata FROM chunks ORDER BY pos")
        mask = np.zeros(len(rows), dtype=bool)
        for pos, chunk_id, doc_id, title, metadata in rows:
            fields = {"chunk_id": chunk_id, "doc_id": doc_id, "title": title}
            mask[pos] = where.matches(json.loads(metadata), fields)
        return mask


def _chunk(row: tuple) -> Chunk:
    _key, chunk_id, doc_id, text, start, end, title, metadata = row
    return Chunk(chunk_id, doc_id, text, start, end, title, MappingProxyType(json.loads(metadata)))
