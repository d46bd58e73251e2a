"""FAISS dense index keyed by int64 chunk keys: exact inner product by default, HNSW or IVF-PQ for large corpora.

Vectors are L2-normalised, so inner product is cosine similarity. Every index is wrapped in `IndexIDMap2`, so
chunks are added and removed by key and an incremental ingest updates the index in place.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from core.errors import ConfigError

log = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw", "ivfpq"]


def chunk_key(chunk_id: str) -> int:
    """A stable, non-negative int64 for a chunk id (blake2b, 63 bits; -1 is FAISS's 'no result')."""
    digest = hashlib.blake2b(chunk_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


def chunk_keys(chunk_ids: Iterable[str]) -> np.ndarray:
    return np.fromiter((chunk_key(c) for c in chunk_ids), dtype=np.int64)


@dataclass(frozen=True, slots=True)
class FaissIndexSpec:
    kind: IndexKind = "flat"
    hnsw_m: int = 32  # graph degree
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    ivf_nlist: int = 0  # 0: about 4 * sqrt(n) lists, chosen when trained
    pq_m: int = 0  # sub-quantisers; 0: dim / 8 (must divide dim)
    ivf_nprobe: int = 16


class FaissIndex:
    """add / remove / search by int64 key. `search` returns cosine scores (q, k) and keys (q, k), -1 padded."""

    def __init__(self, dim: int, spec: FaissIndexSpec = FaissIndexSpec()) -> None:
        self.dim = dim
        self.spec = spec
        self._index: faiss.IndexIDMap2 | None = None

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    @property
    def faiss_index(self) -> faiss.IndexIDMap2:
        """The wrapped FAISS object (for benchmarks that call it bare)."""
        assert self._index is not None, "empty FaissIndex"
        return self._index

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(keys) != len(vectors):
            raise ValueError(f"add: expected ({len(keys)}, {self.dim}) vectors, got {vectors.shape}")
        if len(keys) == 0:
            return
        if self._index is None:
            self._index = self._new_index(vectors)
        self._index.add_with_ids(vectors, keys)

    def remove(self, keys: np.ndarray) -> int:
        """Remove these keys; returns how many were present."""
        if self._index is None or len(keys) == 0:
            return 0
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        if self.spec.kind == "hnsw":
            return self._rebuild_without(keys)  # HNSW graphs cannot delete nodes
        return int(self._index.remove_ids(faiss.IDSelectorBatch(keys)))

    def search(self, vectors: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """vectors (q, dim) -> scores (q, k) float32, keys (q, k) int64; `allowed` restricts to these keys."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._index is None or k <= 0:
            return np.zeros((len(vectors), 0), np.float32), np.zeros((len(vectors), 0), np.int64)
        if allowed is None:
            return self._index.search(vectors, k)
        return self._index.search(vectors, k, params=self._search_params(allowed))

    def keys(self) -> np.ndarray:
        """Every key in the index (int64)."""
        if self._index is None:
            return np.zeros(0, np.int64)
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys (n,), vectors (n, dim)) of every entry, read back from the index: exact for flat and HNSW, decoded
        (approximate) for product-quantised ones."""
        if self._index is None:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        inner = faiss.downcast_index(self._index.index)
        try:
            vectors = inner.reconstruct_n(0, inner.ntotal)
        except RuntimeError as err:
            raise ConfigError(f"this {self.spec.kind} index cannot give its vectors back ({err}): use a flat or "
                              "hnsw index") from err
        return self.keys(), vectors

    def save(self, path: Path) -> None:
        if self._index is None:
            raise ValueError("save: the index is empty")
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, spec: FaissIndexSpec) -> FaissIndex:
        index = faiss.read_index(str(path))
        if not isinstance(index, faiss.IndexIDMap2):
            index = faiss.downcast_index(index)
        out = cls(index.d, spec)
        out._index = index
        out._apply_search_params()
        return out

    def _new_index(self, train: np.ndarray) -> faiss.IndexIDMap2:
        match self.spec.kind:
            case "flat":
                inner = faiss.IndexFlatIP(self.dim)
            case "hnsw":
                inner = faiss.IndexHNSWFlat(self.dim, self.spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
                inner.hnsw.efConstruction = self.spec.hnsw_ef_construction
            case "ivfpq":
                inner = self._trained_ivfpq(train)
        index = faiss.IndexIDMap2(inner)
        self._index = index
        self._apply_search_params()
        return index

    def _trained_ivfpq(self, train: np.ndarray) -> faiss.Index:
        nlist = self.spec.ivf_nlist or max(1, int(4 * np.sqrt(len(train))))
        nlist = min(nlist, max(1, len(train) // 39))  # FAISS wants ~39 training points per centroid
        pq_m = self.spec.pq_m or max(1, self.dim // 8)
        nbits = int(min(8, max(4, np.log2(max(2, len(train) // 39)))))  # 2**nbits codes, ~39 points each
        quantiser = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFPQ(quantiser, self.dim, nlist, pq_m, nbits, faiss.METRIC_INNER_PRODUCT)
        index.own_fields = True
        quantiser.this.disown()
        index.train(train)
        log.info("trained IVF-PQ: %d lists, %d x %d-bit codes on %d vectors", nlist, pq_m, nbits, len(train))
        return index

    def _apply_search_params(self) -> None:
        inner = faiss.downcast_index(self._index.index)
        if isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = self.spec.hnsw_ef_search
        elif isinstance(inner, faiss.IndexIVF):
            inner.nprobe = min(self.spec.ivf_nprobe, inner.nlist)

    def _search_params(self, allowed: np.ndarray) -> faiss.SearchParameters:
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        inner = faiss.downcast_index(self._index.index)
        if isinstance(inner, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.spec.hnsw_ef_search, 256))
        elif isinstance(inner, faiss.IndexIVF):
            nprobe = inner.nlist if len(allowed) < 1000 else inner.nprobe  # a small subset: probe every list
            params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
        else:
            params = faiss.SearchParameters(sel=selector)
        params.selector_ref = selector  # keep the selector alive as long as the parameters
        return params

    def _rebuild_without(self, drop: np.ndarray) -> int:
        keys = self.keys()
        keep = ~np.isin(keys, drop)
        vectors = np.vstack([self._index.reconstruct(int(k)) for k in keys[keep]]) if keep.any() else None
        self._index = None
        if vectors is not None:
            self.add(keys[keep], vectors)
        return int((~keep).sum())
