"""A SQLite file that the server's stores (conversations, uploaded files) keep their rows in: made with its schema
on first use (constructing it touches no disk), a connection per call (routes and the collection worker run in
different threads), WAL so readers go on while one writer commits."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

_LOCK_WAIT_S = 30.0  # a writer waits this long for another's commit before the request fails


def now() -> str:
    """A row's time: ISO 8601, UTC, milliseconds (so it sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SqliteFile:
    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self.schema = schema
        self._ready = False
        self._lock = threading.Lock()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            yield db

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, taken for writing at its start, so a count and the insert it allows cannot interleave
        with another writer's."""
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with closing(sqlite3.connect(self.path, timeout=_LOCK_WAIT_S)) as db:
                        db.execute("PRAGMA journal_mode=WAL")  # persistent: set once for the file
                        db.executescript(self.schema)
                    self._ready = True
        return sqlite3.connect(self.path, isolation_level=None, timeout=_LOCK_WAIT_S)
