"""Embed each evaluation query once per embedder: the dense, hybrid and hybrid+rerank configurations of one run
all embed the same queries, and on a 2-core CPU that embedding is most of an eval run's time. With
`--query-cache FILE` the vectors also outlive the run (keyed by embedder name, role and text), so re-running with
other fusion weights or stages costs no embedding."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

Memory = dict[tuple[str, str, str], np.ndarray]  # (embedder name, role, text) -> (dim,) vector


def load_memory(path: Path | None) -> Memory:
    """A query-vector memory saved by an earlier run (our own pickle file), or an empty one."""
    if path is None or not path.is_file():
        return {}
    with path.open("rb") as handle:
        return pickle.load(handle)


def save_memory(path: Path | None, memory: Memory) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as handle:
        pickle.dump(memory, handle, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)


class CachingEmbedder:
    """Wraps an embedder (retrieval.embedders.SentenceTransformerEmbedder): `embed` answers repeated
    (role, text) pairs from memory; everything else (name, dim, precision, cfg, load) is the wrapped one's."""

    def __init__(self, inner: Any, memory: Memory | None = None) -> None:
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
