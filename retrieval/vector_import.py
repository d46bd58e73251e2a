"""Seed the vector cache from an index version built earlier (an eval pool, an index from before the cache existed,
another machine's build), so its vectors are never embedded again.

The vectors are taken only from a flat index (exact copies; HNSW stores them too, IVF-PQ does not) and only after
a re-embedded sample agrees with them (cosine ≥ 0.99), so an index of another embedder cannot poison the cache.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from core.errors import IndexError_
from retrieval.docstore import SqliteDocstore
from retrieval.index_files import DOCSTORE_FILE, FAISS_FILE
from retrieval.store import open_version_dir
from retrieval.vector_cache import VectorCache, text_key
from retrieval.vector_pack import MIN_SAMPLE_COSINE, SAMPLE_SIZE

log = logging.getLogger(__name__)


def index_vectors(version_dir: Path) -> tuple[list[str], np.ndarray]:
    """(texts, vectors) of every chunk of a verified index version, in docstore order."""
    version_dir, manifest = open_version_dir(version_dir)
    index = faiss.read_index(str(version_dir / FAISS_FILE))
    if not isinstance(index, faiss.IndexIDMap2):
        raise IndexError_(f"{version_dir}: not an id-mapped index; its vectors cannot be read back")
    ids = faiss.vector_to_array(index.id_map)
    try:
        stored = index.index.reconstruct_n(0, index.ntotal)
    except RuntimeError as err:
        raise IndexError_(f"{version_dir}: a {manifest.index_kind} index does not keep its vectors exactly; only "
                          "flat and hnsw indexes can seed the cache") from err
    row_of = {int(key): row for row, key in enumerate(ids)}
    docstore = SqliteDocstore(version_dir / DOCSTORE_FILE)
    try:
        keys = docstore.keys_by_position()
        chunks = docstore.chunks(keys.tolist())
    finally:
        docstore.close()
    texts = [chunks[int(k)].text for k in keys]
    vectors = np.ascontiguousarray(stored[[row_of[int(k)] for k in keys]], dtype=np.float32)
    return texts, vectors


def import_index(version_dir: Path, cache: VectorCache, embedder: Any, *, seed: int = 0) -> int:
    """Put an index version's vectors into `cache` after a re-embedded sample agrees; returns how many were new."""
    texts, vectors = index_vectors(version_dir)
    if vectors.shape[1] != cache.dim:
        raise IndexError_(f"{version_dir}: vectors of dim {vectors.shape[1]}, the cache holds dim {cache.dim}")
    picks = random.Random(seed).sample(range(len(texts)), min(SAMPLE_SIZE, len(texts)))
    fresh = np.asarray(embedder.embed([texts[i] for i in picks], role="document"), dtype=np.float32)
    worst = float(np.sum(fresh * vectors[picks], axis=1).min()) if picks else 1.0
    if worst < MIN_SAMPLE_COSINE:
        raise IndexError_(f"{version_dir}: re-embedded chunks disagree with its vectors (lowest cosine {worst:.3f} "
                          f"< {MIN_SAMPLE_COSINE}): it was built by another embedder; nothing imported")
    keys = [text_key(t) for t in texts]
    known = cache.get_many(keys)
    first = {k: i for i, k in reversed(list(enumerate(keys)))}
    new = [first[k] for k in first if k not in known]
    for start in range(0, len(new), 2000):
        part = new[start : start + 2000]
        cache.put_many([keys[i] for i in part], vectors[part])
    log.info("imported %d new vectors from %s (%d already cached; sample cosine ≥ %.4f)", len(new), version_dir,
             len(first) - len(new), worst)
    return len(new)
