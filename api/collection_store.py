"""The uploaded files of every private collection and where each one stands, in SQLite
(`$DOSSIER_HOME/collections/collections.sqlite`, api/sqlite_file.py):

  files(file_id PK, owner, domain, name, bytes, status, chunks, error, note, progress, created, updated)

status: queued (saved, waiting for the worker) -> indexing -> ready | failed (with `error`). A row is the truth of
what a collection holds: a deleted file's row goes at once, so it leaves listings and search results at once, and
the worker removes its chunks from the index after. Every query names the owner and domain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from api.sqlite_file import SqliteFile, now

MAX_FILES = 200  # per collection: with the upload cap, a bound on one owner's disk use
QUEUED, INDEXING, READY, FAILED = "queued", "indexing", "ready", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (file_id TEXT PRIMARY KEY, owner TEXT NOT NULL, domain TEXT NOT NULL,
  name TEXT NOT NULL, bytes INTEGER NOT NULL, status TEXT NOT NULL, chunks INTEGER NOT NULL, error TEXT,
  note TEXT, progress REAL, created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS files_by_collection ON files(owner, domain, created);
"""
_COLUMNS = "file_id, name, bytes, status, chunks, error, note, progress, created"
_UPDATABLE = frozenset(("status", "chunks", "error", "note", "progress"))


class CollectionFull(Exception):
    """A collection holds MAX_FILES files already."""


@dataclass(frozen=True, slots=True)
class FileRow:
    file_id: str
    name: str
    bytes: int
    status: str
    chunks: int = 0
    error: str | None = None
    note: str | None = None
    progress: float | None = None
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class CollectionStore:
    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _SCHEMA)

    def add(self, owner: str, domain: str, file_id: str, name: str, size: int) -> FileRow:
        row = FileRow(file_id, name, size, QUEUED, progress=0.0, created=now())
        with self._file.write() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM files WHERE owner = ? AND domain = ?",
                                  (owner, domain)).fetchone()
            if count >= MAX_FILES:
                raise CollectionFull(f"this collection holds {count} files, the most it keeps; delete some first")
            db.execute(f"INSERT INTO files (owner, domain, updated, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                       "?, ?, ?)", (owner, domain, row.created, *_values(row)))
        return row

    def files(self, owner: str, domain: str) -> list[FileRow]:
        """The collection's files in upload order."""
        with self._file.read() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM files WHERE owner = ? AND domain = ? ORDER BY created, rowid",
                              (owner, domain)).fetchall()
        return [FileRow(*row) for row in rows]

    def ready_names(self, owner: str, domain: str) -> dict[str, str]:
        """file id -> name of the files search may show."""
        return {f.file_id: f.name for f in self.files(owner, domain) if f.status == READY}

    def delete(self, owner: str, domain: str, file_id: str | None = None) -> int:
        """Remove one file's row (`file_id`) or all of the collection's; how many went."""
        where, args = "owner = ? AND domain = ?", [owner, domain]
        if file_id is not None:
            where, args = where + " AND file_id = ?", [*args, file_id]
        with self._file.write() as db:
            return db.execute(f"DELETE FROM files WHERE {where}", args).rowcount

    def update(self, file_id: str, **changes: Any) -> None:
        """Set columns of a file (status, chunks, error, note, progress); a row deleted meanwhile stays deleted."""
        assert set(changes) <= _UPDATABLE, f"not a column to update: {set(changes) - _UPDATABLE}"
        columns = ", ".join(f"{name} = ?" for name in changes)  # names from the set above, never from a request
        with self._file.write() as db:
            db.execute(f"UPDATE files SET {columns}, updated = ? WHERE file_id = ?",
                       (*changes.values(), now(), file_id))


def _values(row: FileRow) -> tuple[Any, ...]:
    return (row.file_id, row.name, row.bytes, row.status, row.chunks, row.error, row.note, row.progress, row.created)
