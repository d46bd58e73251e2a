"""Apply one run's changes to the store: drop what changed or went away, then decide for every new document
whether it is kept (and chunked), an exact or near duplicate, or an id conflict. Runs inside one transaction.

Priority: a document already kept stays kept until its own file changes; among new documents the run order wins
(the declared corpus order, then the files of a folder sorted by path). When a kept document goes away, the
duplicates recorded against it are decided again (they are stored whole, so no file is re-read).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from core.records import Document
from domains.config import ChunkingConfig
from ingest.chunking import chunk_document
from ingest.dedup import MinHashNearDuplicates, content_hash, group_key, near_text
from ingest.store import ChunkStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Delta:
    documents_added: int = 0
    documents_removed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    decisions: dict[str, int] = field(default_factory=dict)  # kind -> count in this run


@dataclass(frozen=True, slots=True)
class Changes:
    """What a run found: the documents of every new or changed source (none for a bad file), the keys of sources
    that are gone, each source's position in the run, and the sources whose titles come from record fields."""

    parsed: Mapping[str, Sequence[Document]]
    removed: tuple[str, ...] = ()
    order: Mapping[str, int] = field(default_factory=dict)
    titled: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Candidate:
    order: tuple[int, int]  # (source order, position in the source)
    doc: Document
    group: str
    digest: str


class Reconciler:
    def __init__(self, store: ChunkStore, chunking: ChunkingConfig, identity: Sequence[str], progress: bool) -> None:
        self.store = store
        self.chunking = chunking
        self.identity = tuple(identity)
        self.progress = progress

    def apply(self, changes: Changes) -> Delta:
        delta = Delta()
        touched = set(changes.parsed) | set(changes.removed)
        kept = self.store.document_hashes()
        fresh = [self._candidate(doc, changes, i) for docs in changes.parsed.values() for i, doc in enumerate(docs)]
        retained = _retained(fresh, kept)
        gone = [doc_id for doc_id, (source, _) in kept.items() if source in touched and doc_id not in retained]
        delta.chunks_removed = self.store.remove_documents(gone)
        delta.documents_removed = len(gone)
        for key in touched:
            self.store.remove_duplicates_of_source(key)
        orphans = [self._orphan(doc, digest, changes) for doc, digest in self.store.take_orphans(gone)]
        candidates = sorted([c for c in fresh if c.doc.doc_id not in retained or retained[c.doc.doc_id] is not c]
                            + orphans, key=lambda c: c.order)  # fmt: skip
        self._decide(candidates, delta)
        return delta

    def _candidate(self, doc: Document, changes: Changes, position: int) -> Candidate:
        # A record's title comes from its fields (law name + article no.) and is part of its identity; a plain
        # file's title is only its name, so two copies of one file are duplicates whatever they are called.
        group = group_key(doc.metadata, self.identity)
        title = doc.title if doc.source in changes.titled else ""
        source_order = changes.order.get(doc.source, len(changes.order))
        return Candidate((source_order, position), doc, group, content_hash(group, title, doc.text))

    def _orphan(self, doc: Document, digest: str, changes: Changes) -> Candidate:
        group = group_key(doc.metadata, self.identity)
        return Candidate((changes.order.get(doc.source, len(changes.order)), 0), doc, group, digest)

    def _decide(self, candidates: list[Candidate], delta: Delta) -> None:
        if not candidates:
            return
        by_id = {doc_id: digest for doc_id, (_, digest) in self.store.document_hashes().items()}
        by_hash = {digest: doc_id for doc_id, digest in by_id.items()}
        near = self._near_index()
        for cand in tqdm(candidates, desc="dedup+chunk", unit="doc", disable=not self.progress, leave=False):
            doc_id = cand.doc.doc_id
            if doc_id in by_id:
                kind = "exact" if by_id[doc_id] == cand.digest else "id_conflict"
                self._drop(cand, kind, doc_id, 1.0, delta)
            elif cand.digest in by_hash:
                self._drop(cand, "exact", by_hash[cand.digest], 1.0, delta)
            elif (found := near.find_or_add(doc_id, cand.group, near_text(cand.doc.title, cand.doc.text))) is not None:
                self._drop(cand, "near", found[0], found[1], delta)
            else:  # find_or_add registered it with the near-duplicate index
                self._keep(cand, delta)
                by_id[doc_id], by_hash[cand.digest] = cand.digest, doc_id

    def _keep(self, cand: Candidate, delta: Delta) -> None:
        delta.chunks_added += self.store.add_document(cand.doc, cand.digest, chunk_document(cand.doc, self.chunking))
        delta.documents_added += 1

    def _drop(self, cand: Candidate, kind: str, duplicate_of: str, similarity: float, delta: Delta) -> None:
        self.store.add_duplicate(cand.doc, cand.digest, kind, duplicate_of, similarity)
        delta.decisions[kind] = delta.decisions.get(kind, 0) + 1

    def _near_index(self) -> MinHashNearDuplicates:
        near = MinHashNearDuplicates(self.chunking.near_duplicate_threshold)
        for doc in self.store.documents():
            near.add(doc.doc_id, group_key(doc.metadata, self.identity), near_text(doc.title, doc.text))
        return near


def _retained(fresh: list[Candidate], kept: dict[str, tuple[str, str]]) -> dict[str, Candidate]:
    """New documents identical to the kept document of the same id from the same source: nothing to redo."""
    retained: dict[str, Candidate] = {}
    for cand in fresh:
        if cand.doc.doc_id not in retained and kept.get(cand.doc.doc_id) == (cand.doc.source, cand.digest):
            retained[cand.doc.doc_id] = cand
    return retained

