"""Embed each evaluation query once per embedder: the dense, hybrid and hybrid+rerank configurations of one run
all embed the same queries, and on a 2-core CPU that embedding is most of an eval run's time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class CachingEmbedder:
    """Wraps an embedder (retrieval.embedders.SentenceTransformerEmbedder): `embed` answers repeated
    (role, text) pairs from memory; everything else (name, dim, precision, cfg, load) is the wrapped one's."""

    def __init__(self, inner: Any, memory: dict[tuple[str, str, str], np.ndarray] | None = None) -> None:
        self._inner = inner
        self._memory = memory if memory is not None else {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def load(self) -> CachingEmbedder:
        self._inner.load()
        return self

    def embed(self, texts: Sequence[str], role: str = "document") -> np.ndarray:
        keys = [(self._inner.name, role, t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._memory))
        if missing:
            vectors = self._inner.embed([k[2] for k in missing], role=role)  # (n, dim)
            self._memory.update(zip(missing, vectors, strict=True))
        if not keys:
            return self._inner.embed([], role=role)
        return np.stack([self._memory[k] for k in keys]).astype(np.float32)
