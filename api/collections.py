"""Private collections on the server: where each lives, saving an upload, the worker's sync of one collection
(statuses: api/collection_store.py; ingest and index: rag/private_collection.py), and the retriever that adds a
caller's collection to a domain's search.

  $DOSSIER_HOME/collections/collections.sqlite        every collection's files and their status
  $DOSSIER_HOME/collections/incoming/<file_id>        an upload saved, waiting for the worker
  $DOSSIER_HOME/collections/<sha256(owner)>/<domain>/ one collection (files/, ingest/, index/)

Only the worker thread writes inside a collection folder; a request saves into incoming/ and adds a row. So an
upload never races a sync, and a collection whose last file is deleted can be removed whole.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from api.collection_store import FAILED, INDEXING, QUEUED, READY, CollectionStore, FileRow
from api.collection_worker import SyncQueue
from core.errors import ConfigError
from core.paths import data_home
from core.protocols import Retriever
from ingest.limits import MIB, IngestLimits
from ingest.sources import upload_path
from rag.pipeline import RagPipeline
from rag.private_collection import (
    CollectionIndexer,
    CollectionLayout,
    CollectionRetriever,
    FileOutcome,
    open_collection_retriever,
)
from retrieval.hybrid import HybridRetriever
from retrieval.store import IndexStore

log = logging.getLogger(__name__)

UPLOAD_MAX_ENV = "DOSSIER_UPLOAD_MAX_MB"
DEFAULT_UPLOAD_MAX_BYTES = 50 * MIB  # under IngestLimits.max_file_bytes (64 MiB): what is accepted can be read
UPLOAD_FORMATS = ("pdf", "docx", "txt", "md", "html")  # the record formats (JSONL, CSV) need a domain.toml mapping
OPEN_RETRIEVERS = 32  # collections kept open between requests (each holds its FAISS and BM25 in memory)
Key = tuple[str, str]  # (owner, domain)


def upload_max_from_env() -> int:
    """$DOSSIER_UPLOAD_MAX_MB in MiB (e.g. 20 or 0.5), else the default; a value that is not a positive number
    stops the server at start, with this reason."""
    value = os.environ.get(UPLOAD_MAX_ENV, "").strip()
    if not value:
        return DEFAULT_UPLOAD_MAX_BYTES
    try:
        size = int(float(value) * MIB)
    except ValueError:
        size = 0
    if size < 1:
        raise ConfigError(f"{UPLOAD_MAX_ENV}={value!r}: give the largest upload in MiB, a positive number")
    return size


def collection_base(pipeline: RagPipeline) -> HybridRetriever | None:
    """The domain retriever whose models a collection shares; None for a pipeline without one (a test fake)."""
    return pipeline.retriever if isinstance(pipeline.retriever, HybridRetriever) else None


class Collections:
    """The private collections of one server. `pipelines(domain)` is the domain's ready pipeline or None."""

    def __init__(self, pipelines: Callable[[str], RagPipeline | None], root: Path | None = None, *,
                 upload_max_bytes: int | None = None, limits: IngestLimits | None = None) -> None:
        self.root = root or data_home() / "collections"
        self.store = CollectionStore(self.root / "collections.sqlite")
        self.upload_max_bytes = upload_max_bytes or upload_max_from_env()
        self.limits = limits or IngestLimits()  # what `dossier ingest` reads a file within
        self.worker = SyncQueue(self._sync)
        self._pipelines = pipelines
        self._open: OrderedDict[Key, tuple[str, HybridRetriever]] = OrderedDict()
        self._indexers: dict[str, CollectionIndexer] = {}  # per domain; used by the worker thread only
        self._lock = threading.Lock()

    def layout(self, owner: str, domain: str) -> CollectionLayout:
        # the owner is hashed: a folder name from an id chosen by a client is never a path
        return CollectionLayout(self.root / hashlib.sha256(owner.encode()).hexdigest()[:32] / domain)

    def staged(self, file_id: str) -> Path:
        return self.root / "incoming" / file_id

    def new_file_id(self) -> str:
        return uuid.uuid4().hex

    def add(self, owner: str, domain: str, file_id: str, name: str, source: BinaryIO, size: int) -> FileRow:
        """Save an upload (checked already: name, type, size) and queue it. The bytes are in place before the
        row exists, so the worker never sees a queued file that is not there yet."""
        staged = self.staged(file_id)
        staged.parent.mkdir(parents=True, exist_ok=True)
        partial = staged.with_suffix(".part")
        try:
            with partial.open("wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            os.replace(partial, staged)
            row = self.store.add(owner, domain, file_id, name, size)
        except BaseException:
            partial.unlink(missing_ok=True)
            staged.unlink(missing_ok=True)
            raise
        self.worker.enqueue((owner, domain))
        return row

    def delete(self, owner: str, domain: str, file_id: str | None = None) -> int:
        """Remove one file (or all): from listings and search at once, from disk and index by the worker."""
        gone = [f.file_id for f in self.store.files(owner, domain) if file_id in (None, f.file_id)]
        removed = self.store.delete(owner, domain, file_id)
        for fid in gone:
            self.staged(fid).unlink(missing_ok=True)
        if removed:
            self.worker.enqueue((owner, domain))
        return removed

    def resume(self, owner: str, domain: str) -> None:
        """Queue a collection that has files waiting but no sync coming (the server restarted meanwhile)."""
        waiting = any(f.status in (QUEUED, INDEXING) for f in self.store.files(owner, domain))
        if waiting and not self.worker.active((owner, domain)):
            self.worker.enqueue((owner, domain))

    def retriever(self, owner: str, domain: str, base: HybridRetriever) -> Retriever | None:
        """A retriever over the owner's ready files in `domain`; None when there is none to search."""
        names = self.store.ready_names(owner, domain)
        layout = self.layout(owner, domain)
        current = _version_stamp(layout)
        if not names or current is None:
            return None
        key = (owner, domain)
        with self._lock:
            cached = self._open.get(key)
        if cached is None or cached[0] != current:
            cached = (current, open_collection_retriever(base, layout))
        with self._lock:
            self._open[key] = cached
            self._open.move_to_end(key)
            while len(self._open) > OPEN_RETRIEVERS:
                self._open.popitem(last=False)  # not closed: a request may be searching it; collected when done
        return CollectionRetriever(cached[1], names)

    def stop(self) -> None:
        self.worker.stop()

    def _sync(self, key: Key) -> None:
        owner, domain = key
        rows, layout = self.store.files(owner, domain), self.layout(owner, domain)
        if not rows:
            with self._lock:
                self._open.pop(key, None)
            shutil.rmtree(layout.root, ignore_errors=True)  # nothing left: no version, no store, no folder
            return
        pipeline = self._pipelines(domain)
        base = collection_base(pipeline) if pipeline is not None else None
        if pipeline is None or base is None:
            log.info("collection sync of %s waits: the domain is not ready", domain)
            return  # the files stay queued; listing the collection queues it again (resume)
        indexer = self._indexers.get(domain)
        if indexer is None or indexer.base is not base:
            indexer = self._indexers[domain] = CollectionIndexer(pipeline.cfg, base)
        self._remove_deleted(rows, layout)
        todo = [f for f in rows if f.status in (QUEUED, INDEXING) and self._take_staged(f, layout)]

        def on_stage(stage: str) -> None:
            for f in todo:
                self.store.update(f.file_id, progress=0.5 if stage == "ingested" else 0.9)

        try:
            outcomes = indexer.sync(layout, self.limits, on_stage)
        except Exception as err:  # the previous index version stays current; these files failed, no other did
            log.exception("indexing collection %s/%s failed", layout.root.parent.name, domain)
            for f in todo:
                self._fail(f.file_id, layout, f"indexing failed: {type(err).__name__}: {err}")
            return
        self._record([f for f in rows if f.status == READY] + todo, outcomes, layout)

    def _take_staged(self, row: FileRow, layout: CollectionLayout) -> bool:
        """Move a queued upload into the collection's files folder; False (and the file failed) when it is gone."""
        target = upload_path(layout.file_dir(row.file_id), row.name)
        staged = self.staged(row.file_id)
        if staged.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
        if not target.exists():
            self._fail(row.file_id, layout, "the upload was lost (the server stopped before saving it); upload it "
                       "again")
            return False
        self.store.update(row.file_id, status=INDEXING, progress=0.1)
        return True

    def _remove_deleted(self, rows: list[FileRow], layout: CollectionLayout) -> None:
        kept = {f.file_id for f in rows}
        if layout.files.is_dir():
            for folder in layout.files.iterdir():
                if folder.name not in kept:
                    shutil.rmtree(folder, ignore_errors=True)

    def _record(self, rows: list[FileRow], outcomes: dict[str, FileOutcome], layout: CollectionLayout) -> None:
        names = {f.file_id: f.name for f in rows}
        for row in rows:
            outcome = outcomes.get(row.file_id)
            if outcome is None:
                self._fail(row.file_id, layout, "ingest did not find the file")
            elif outcome.error:
                self._fail(row.file_id, layout, outcome.error)
            else:
                dup = outcome.duplicate_of
                note = f"the same text as {names.get(dup, 'another file')}: nothing new to index" if dup else None
                self.store.update(row.file_id, status=READY, chunks=outcome.chunks, error=None, note=note,
                                  progress=1.0)

    def _fail(self, file_id: str, layout: CollectionLayout, reason: str) -> None:
        log.info("collection file %s failed: %s", file_id, reason)
        self.store.update(file_id, status=FAILED, chunks=0, error=reason, progress=None)
        shutil.rmtree(layout.file_dir(file_id), ignore_errors=True)  # out of the ingest scope from the next sync


def _version_stamp(layout: CollectionLayout) -> str | None:
    """The current index version, with its folder's inode: a collection deleted and filled again starts at v0001
    again, and must not be served from a retriever opened on the old v0001."""
    name = IndexStore(layout.index).current()
    try:
        return None if name is None else f"{name}:{(layout.index / name).stat().st_ino}"
    except FileNotFoundError:  # pruned or wiped since `current` was read
        return None
