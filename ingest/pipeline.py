"""`run_ingest`: discover -> hash -> load what changed -> reconcile the store -> report.

Re-running on an unchanged corpus hashes the files and stops: no parsing, no writes (except report.json).
The scope rule (see ingest.sources): with no PATHs the run covers the declared corpus; with PATHs exactly those.
Only manifest entries inside the run's scope can be found removed; entries of other scopes are left alone.
Every file is read within `IngestLimits` (ingest/limits.py); a file or record refused by them is skipped with the
reason, and is read again by the first run under other limits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from core.errors import IngestError
from core.hashing import sha256_file
from core.paths import ingest_dir
from core.records import Document
from domains.config import DomainConfig
from ingest.dedup import identity_fields
from ingest.limits import IngestLimits
from ingest.loaders import load_source
from ingest.manifest import ManifestEntry, fingerprint
from ingest.reconcile import Changes, Delta, Reconciler
from ingest.report import IngestReport, SkippedItem, write_report
from ingest.sources import Discovery, SourceFile, discover
from ingest.store import ChunkStore

log = logging.getLogger(__name__)

STORE_FILE = "chunks.sqlite"
REPORT_FILE = "report.json"
LIMITS_KEY = "limits"  # meta key: the IngestLimits the manifest's skips were decided under


@dataclass(frozen=True, slots=True)
class _Scan:
    """The files of this run split by what happened to them since the last run."""

    changed: tuple[SourceFile, ...]
    unchanged: tuple[SourceFile, ...]
    removed: tuple[str, ...]
    hashes: dict[str, str]
    unreadable: tuple[SkippedItem, ...]


def run_ingest(
    cfg: DomainConfig, paths: Sequence[Path] = (), *, workspace: Path | None = None, progress: bool = True,
    limits: IngestLimits | None = None,
) -> IngestReport:
    """Ingest the declared corpus of `cfg` (or exactly `paths`) into `<workspace>/chunks.sqlite`, incrementally."""
    started = time.perf_counter()
    workspace = Path(workspace) if workspace is not None else ingest_dir(cfg.name)
    limits = limits or IngestLimits()
    found = discover(cfg, paths)
    identity = identity_fields(cfg.corpus)
    with ChunkStore(workspace / STORE_FILE, create=True) as store:
        rebuild = _stale(store, cfg, identity)
        manifest = {} if rebuild else store.manifest()
        scan = _scan(found, manifest, retry_skips=store.meta(LIMITS_KEY) != limits.key())
        delta, entries = Delta(), {}
        if scan.changed or scan.removed or rebuild:
            parsed, entries = _load(scan, progress, limits)
            changes = Changes(parsed, scan.removed, {f.key: f.order for f in found.files}, _titled(found.files))
            with store.transaction():
                if rebuild:
                    store.clear()
                    store.set_meta("fingerprint", fingerprint(cfg.chunking, identity))
                delta = Reconciler(store, cfg.chunking, identity, progress).apply(changes)
                _write_manifest(store, entries, scan.removed)
                store.set_meta(LIMITS_KEY, limits.key())
        else:
            log.info("ingest %s: nothing changed", cfg.name)
        report = _report(cfg.name, found, scan, {**manifest, **entries}, store, delta, time.perf_counter() - started)
    write_report(report, workspace / REPORT_FILE)
    log.debug("%s", report.summary())
    return report


def open_chunk_store(cfg: DomainConfig) -> ChunkStore:
    """The domain's ingest store, running ingest first when there is none (what an index build reads)."""
    path = ingest_dir(cfg.name) / "chunks.sqlite"
    if not path.is_file():
        log.warning("no ingested corpus for %s: running ingest first", cfg.name)
        run_ingest(cfg)
    return ChunkStore(path)


def _stale(store: ChunkStore, cfg: DomainConfig, identity: Sequence[str]) -> bool:
    """True when the store was built with another chunking / identity / normaliser, or is new."""
    current = fingerprint(cfg.chunking, identity)
    previous = store.meta("fingerprint")
    if previous is not None and previous != current:
        log.warning("chunking settings changed since the last ingest: rebuilding the store from scratch")
    return previous != current


def _scan(found: Discovery, manifest: dict[str, ManifestEntry], retry_skips: bool = False) -> _Scan:
    """`retry_skips`: the limits changed since the manifest was written, so files with skips are read again."""
    hashes, unreadable = {}, []
    for file in found.files:
        try:
            hashes[file.key] = sha256_file(file.path)
        except OSError as err:  # keep its previous state: an unreadable file is not a deleted one
            unreadable.append(SkippedItem(file.key, f"unreadable: {err.strerror or err}"))
    readable = [f for f in found.files if f.key in hashes]
    changed = tuple(f for f in readable if f.key not in manifest or manifest[f.key].file_hash != hashes[f.key]
                    or retry_skips and manifest[f.key].skipped)
    unchanged = tuple(f for f in readable if f not in changed)
    listed = {f.key for f in found.files}
    removed = tuple(k for k in manifest if k not in listed and found.in_scope(k))
    return _Scan(changed, unchanged, removed, hashes, tuple(unreadable))


def _load(scan: _Scan, progress: bool, limits: IngestLimits,
          ) -> tuple[dict[str, list[Document]], dict[str, ManifestEntry]]:
    parsed: dict[str, list[Document]] = {}
    entries: dict[str, ManifestEntry] = {}
    for file in tqdm(scan.changed, desc="load", unit="file", disable=not progress, leave=False):
        documents, skipped = _load_one(file, limits)
        parsed[file.key] = documents
        entries[file.key] = ManifestEntry(file.key, scan.hashes[file.key], len(documents), skipped)
    return parsed, entries


def _load_one(file: SourceFile, limits: IngestLimits) -> tuple[list[Document], tuple[SkippedItem, ...]]:
    """Bad input never ends the run: every failure becomes a skipped item with its reason."""
    try:
        result = load_source(file, limits)
    except IngestError as err:
        return [], (SkippedItem(file.key, str(err)),)
    except Exception as err:  # a parser bug on a strange file must not stop the batch; it is reported
        log.warning("unexpected error loading %s", file.key, exc_info=True)
        return [], (SkippedItem(file.key, f"unexpected error: {type(err).__name__}: {err}"),)
    return list(result.documents), result.skipped


def _titled(files: Sequence[SourceFile]) -> frozenset[str]:
    return frozenset(f.key for f in files if f.format in ("jsonl", "csv") and f.spec.title_fields)


def _write_manifest(store: ChunkStore, entries: dict[str, ManifestEntry], removed: Sequence[str]) -> None:
    for entry in entries.values():
        store.put_manifest(entry)
    for key in removed:
        store.drop_manifest(key)


def _report(
    domain: str, found: Discovery, scan: _Scan, manifest: dict[str, ManifestEntry], store: ChunkStore,
    delta: Delta, seconds: float,
) -> IngestReport:  # fmt: skip
    entries = [manifest[f.key] for f in (*scan.changed, *scan.unchanged)]
    whole_file_skips = sum(1 for e in entries if e.documents == 0)
    conflicts = [SkippedItem(f"{src}#{doc_id}", f"doc_id already ingested from a document with other text ({of})")
                 for src, doc_id, kind, of in store.duplicate_rows() if kind == "id_conflict"]  # fmt: skip
    skipped = (*found.skipped, *scan.unreadable, *(item for e in entries for item in e.skipped), *conflicts)
    counts = store.duplicate_counts()
    n_chunks = len(store)
    return IngestReport(
        domain=domain,
        files_seen=len(found.files) + len(found.skipped),
        files_ingested=sum(1 for f in scan.changed if manifest[f.key].documents > 0),
        files_unchanged=sum(1 for f in scan.unchanged if manifest[f.key].documents > 0),
        files_skipped=whole_file_skips + len(found.skipped) + len(scan.unreadable),
        files_removed=len(scan.removed),
        documents=store.document_count(),
        documents_added=delta.documents_added,
        documents_removed=delta.documents_removed,
        chunks=n_chunks,
        chunks_added=delta.chunks_added,
        chunks_removed=delta.chunks_removed,
        chunks_unchanged=n_chunks - delta.chunks_added,
        exact_duplicates=counts.get("exact", 0),
        near_duplicates=counts.get("near", 0),
        id_conflicts=counts.get("id_conflict", 0),
        seconds=round(seconds, 3),
        skipped=tuple(skipped),
    )
