"""The one background thread per server that indexes uploaded files: a queue of collections to bring in line with
their files, each collection at most once in the queue (ten uploads in a row make one or two syncs, not ten).
One thread: a sync embeds on the CPU the requests also use, and two syncs of one collection must never overlap.
The thread starts with the first job (importing or building the app starts nothing) and stops with the app."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)


class SyncQueue:
    """`enqueue(key)` asks for `sync(key)` to run on the worker thread: soon, and after any sync of `key` already
    running (a file uploaded during a sync is picked up by the next one)."""

    def __init__(self, sync: Callable[[Any], None], name: str = "dossier-collections") -> None:
        self.sync = sync
        self.name = name
        self._pending: dict[Hashable, None] = {}  # insertion-ordered set
        self._running: Hashable | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def enqueue(self, key: Hashable) -> None:
        with self._cond:
            if self._stopping:
                return
            self._pending[key] = None
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify()

    def active(self, key: Hashable) -> bool:
        """Whether a sync of `key` is waiting or running."""
        with self._cond:
            return key in self._pending or key == self._running

    def idle(self) -> bool:
        with self._cond:
            return not self._pending and self._running is None

    def stop(self, timeout_s: float = 30.0) -> None:
        """No new jobs; the running sync finishes (a half-done one would leave nothing broken, see
        rag/private_collection.py, but its files would wait for the next start)."""
        with self._cond:
            self._stopping = True
            self._pending.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                key = next(iter(self._pending))
                del self._pending[key]
                self._running = key
            try:
                self.sync(key)
            except Exception:  # one collection's failure must not stop the others' indexing
                log.exception("collection sync failed")
            finally:
                with self._cond:
                    self._running = None
