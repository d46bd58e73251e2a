"""Vectors of an index build in progress, so a killed build resumes instead of starting over.

Embedding the 26k legal articles takes about an hour of CPU here. The builder embeds in slices and appends each
slice to `<index_root>/.embed-cache/<embedder tag>/part-NNNNN.npz` (chunk ids, content hashes, vectors; each file
written to a temp name and renamed, so a part is whole or absent). The next build reuses every vector whose
(chunk id, hash) still matches and deletes the cache once its version is written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.manifest import EmbedderInfo

log = logging.getLogger(__name__)


class EmbeddingCache:
    def __init__(self, index_root: Path, embedder: EmbedderInfo) -> None:
        tag = hashlib.sha256(repr(embedder).encode()).hexdigest()[:16]
        self.directory = index_root / ".embed-cache" / tag

    def load(self) -> dict[tuple[str, str], np.ndarray]:
        """(chunk_id, hash) -> vector (dim,) float32 from every complete part."""
        found: dict[tuple[str, str], np.ndarray] = {}
        for part in sorted(self.directory.glob("part-*.npz")):
            try:
                with np.load(part, allow_pickle=False) as data:
                    for cid, digest, vec in zip(data["ids"], data["hashes"], data["vectors"], strict=True):
                        found[(str(cid), str(digest))] = vec
            except (OSError, ValueError, KeyError) as err:
                log.warning("ignoring unreadable embedding cache part %s: %s", part, err)
        if found:
            log.info("resuming: %d vectors from %s", len(found), self.directory)
        return found

    def append(self, ids: Sequence[str], hashes: Sequence[str], vectors: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        number = len(list(self.directory.glob("part-*.npz")))
        final = self.directory / f"part-{number:05d}.npz"
        tmp = self.directory / f".tmp-{os.getpid()}-{number:05d}.npz"
        with tmp.open("wb") as fh:
            np.savez(fh, ids=np.array(ids, dtype=str), hashes=np.array(hashes, dtype=str), vectors=vectors)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)

    def clear(self) -> None:
        shutil.rmtree(self.directory.parent, ignore_errors=True)
