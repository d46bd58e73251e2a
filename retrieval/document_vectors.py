"""Where an index build gets each chunk's vector: the content-keyed cache, then the domain's vector pack, and only
then the embedder — in slices, each committed to the cache as it is made, so a killed build resumes.

    vectors = DocumentVectors(embedder, cache, pack_dir=cfg_dir / "vectors").vectors_for(texts, progress)

`stats` says where the vectors came from (`from_cache`, `from_pack`, `embedded`) and what was refused and why
(`pack_refused`), so `dossier index build` can tell the user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from retrieval.vector_cache import VectorCache, text_key
from retrieval.vector_pack import PackError, VectorPack, open_pack, verify_sample

log = logging.getLogger(__name__)

EMBED_SLICE = 512  # texts per committed slice: at most this much work is lost when a build is killed

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class DocumentVectors:
    """`embedder` (loaded) checks a pack's sample; `document_embedder` (default: the same) embeds the misses and is
    loaded only when there are any, so a build that the cache and the pack cover never pays for a second runtime.
    The two must be interchangeable (retrieval/vector_cache.py: INTERCHANGEABLE_BACKENDS) to share one cache."""

    def __init__(self, embedder: Any, cache: VectorCache, *, pack_dir: Path | None = None,
                 document_embedder: Any = None) -> None:
        self.embedder = embedder
        self.document_embedder = document_embedder or embedder
        self.cache = cache
        self.pack_dir = pack_dir
        self.stats: dict[str, Any] = {}

    def vectors_for(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """(len(texts), dim) float32 unit rows, in order."""
        progress = progress or (lambda stage, done, total: None)
        keys = [text_key(t) for t in texts]
        found = self.cache.get_many(keys)
        self.stats = {"from_cache": sum(k in found for k in keys), "from_pack": 0, "embedded": 0}
        self._fill_from_pack(keys, texts, found)
        first = {k: i for i, k in reversed(list(enumerate(keys)))}  # a text that occurs twice is embedded once
        todo = sorted(i for k, i in first.items() if k not in found)
        self.stats["embedded"] = len(todo)
        if todo:
            embedder = self.document_embedder.load()
            self.stats["embedded_by"] = f"{embedder.name} ({getattr(embedder, 'backend', '?')})"
            log.info("embedding %d of %d chunks with %s (%d from the cache, %d from the pack)", len(todo), len(texts),
                     self.stats["embedded_by"], self.stats["from_cache"], self.stats["from_pack"])
        with tqdm(total=len(todo), desc="embed", unit="chunk", disable=len(todo) < EMBED_SLICE) as bar:
            for start in range(0, len(todo), EMBED_SLICE):
                part = todo[start : start + EMBED_SLICE]
                vectors = np.asarray(embedder.embed([texts[i] for i in part], role="document"), np.float32)
                self.cache.put_many([keys[i] for i in part], vectors)
                found.update((keys[i], v) for i, v in zip(part, vectors, strict=True))
                bar.update(len(part))
                progress("embed", start + len(part), len(todo))
        if not texts:
            return np.zeros((0, self.embedder.dim), np.float32)
        return np.vstack([found[k] for k in keys]).astype(np.float32)

    def _fill_from_pack(self, keys: Sequence[bytes], texts: Sequence[str], found: dict[bytes, np.ndarray]) -> None:
        if self.pack_dir is None:
            return
        missing = [i for i, k in enumerate(keys) if k not in found]
        if not missing:
            return
        pack = self._open_pack()
        if pack is None:
            return
        positions = pack.positions()
        covered = [i for i in missing if keys[i] in positions]
        if not covered:
            log.info("vector pack %s holds none of the %d chunks to embed", pack.directory, len(missing))
            return
        rows = [positions[keys[i]] for i in covered]
        try:
            self.stats["pack_sample_cosine"] = verify_sample(pack, rows, [texts[i] for i in covered], self.embedder)
        except PackError as err:
            self.stats["pack_refused"] = str(err)
            log.warning("%s; embedding those chunks instead", err)
            return
        for i, vector in zip(covered, pack.vectors_at(rows), strict=True):
            found[keys[i]] = vector
        self.stats["from_pack"] = len({keys[i] for i in covered})
        log.info("vector pack %s: %d of the %d chunks to embed come from the pack%s", pack.directory, len(covered),
                 len(missing), "" if len(covered) == len(missing) else
                 f"; {len(missing) - len(covered)} are new or changed and are embedded")

    def _open_pack(self) -> VectorPack | None:
        assert self.pack_dir is not None
        try:
            pack = open_pack(self.pack_dir, self.cache.identity)
        except PackError as err:
            self.stats["pack_refused"] = str(err)
            log.warning("%s; not used: every chunk is embedded", err)
            return None
        return pack
