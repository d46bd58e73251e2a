"""The incremental manifest: per source file, its content hash, how many documents it yielded, and what it
skipped. It lives in chunks.sqlite (table `manifest`), so it commits in the same transaction as the chunks it
describes: after a crash, store and manifest still agree.

A fingerprint of everything that shapes the output (chunking config, identity fields, normaliser version) sits
beside it; when it changes, the next run rebuilds from scratch instead of mixing two chunkings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from domains.config import ChunkingConfig
from ingest.normalize import NORMALIZE_VERSION
from ingest.report import SkippedItem


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    key: str
    file_hash: str  # sha256 of the file's bytes
    documents: int = 0  # documents the file yielded (kept or duplicate); 0 with `skipped` set: a bad file
    skipped: tuple[SkippedItem, ...] = ()  # records (or the whole file) skipped, re-reported while unchanged

    def to_row(self) -> tuple[str, str, int, str]:
        skipped = [[item.path, item.reason] for item in self.skipped]
        return self.key, self.file_hash, self.documents, json.dumps(skipped, ensure_ascii=False)

    @classmethod
    def from_row(cls, key: str, file_hash: str, documents: int, skipped: str) -> ManifestEntry:
        return cls(key, file_hash, documents, tuple(SkippedItem(p, r) for p, r in json.loads(skipped)))




def fingerprint(chunking: ChunkingConfig, identity: Sequence[str]) -> str:
    """Changes when a re-run would produce different chunks or duplicate decisions for the same files."""
    state = {"chunking": asdict(chunking), "identity": list(identity), "normalize": NORMALIZE_VERSION, "v": 1}
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]
