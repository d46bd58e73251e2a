from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.embedders import l2_normalise
from retrieval.faiss_index import FaissIndex, FaissIndexSpec, chunk_key, chunk_keys


def _data(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    vectors = l2_normalise(np.random.default_rng(seed).standard_normal((n, dim)))
    return chunk_keys(f"doc{i}#0" for i in range(n)), vectors


def test_chunk_key_is_stable_and_non_negative() -> None:
    assert chunk_key("d2da5d066414#第二百六十四条#0") == chunk_key("d2da5d066414#第二百六十四条#0")
    keys = chunk_keys(f"c{i}" for i in range(5000))
    assert (keys >= 0).all() and len(set(keys.tolist())) == 5000


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_add_search_remove_by_id(kind: str, tmp_path: Path) -> None:
    keys, vectors = _data(400, 32)
    index = FaissIndex(32, FaissIndexSpec(kind=kind))
    index.add(keys, vectors)
    scores, found = index.search(vectors[:10], 3)
    assert (found[:, 0] == keys[:10]).all()
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)

    assert index.remove(keys[:5]) == 5
    assert len(index) == 395
    _, found = index.search(vectors[:10], 3)
    assert not np.isin(found, keys[:5]).any()
    assert (found[5:, 0] == keys[5:10]).all()

    index.save(tmp_path / "i.faiss")
    again = FaissIndex.load(tmp_path / "i.faiss", FaissIndexSpec(kind=kind))
    assert len(again) == 395
    assert (again.search(vectors[5:10], 1)[1][:, 0] == keys[5:10]).all()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_the_vectors_read_back_with_their_keys(kind: str) -> None:
    keys, vectors = _data(300, 16)
    index = FaissIndex(16, FaissIndexSpec(kind=kind))
    index.add(keys, vectors)
    index.remove(keys[:7])  # a rebuilt index: the order of entries is the index's own
    got_keys, got = index.vectors()
    by_key = dict(zip(keys.tolist(), vectors, strict=True))
    assert sorted(got_keys.tolist()) == sorted(keys[7:].tolist())
    np.testing.assert_allclose(got, np.stack([by_key[k] for k in got_keys.tolist()]), atol=1e-6)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_search_restricted_to_allowed_keys(kind: str) -> None:
    keys, vectors = _data(300, 16)
    index = FaissIndex(16, FaissIndexSpec(kind=kind))
    index.add(keys, vectors)
    allowed = keys[100:120]
    _, found = index.search(vectors[:4], 10, allowed=allowed)
    assert np.isin(found, allowed).all()  # still 10 results, all from the subset
    exact = np.argsort(-(vectors[:4] @ vectors[100:120].T), axis=1)[:, :10] + 100
    assert (found == keys[exact]).all()


def test_ivfpq_on_a_few_thousand_vectors() -> None:
    keys, vectors = _data(3000, 64, seed=1)
    index = FaissIndex(64, FaissIndexSpec(kind="ivfpq", ivf_nprobe=64))
    index.add(keys, vectors)
    _, found = index.search(vectors[:50], 10)
    recall = np.mean([keys[i] in found[i] for i in range(50)])
    assert recall >= 0.9  # PQ is lossy, but a stored vector finds itself
    assert index.remove(keys[:50]) == 50
    _, found = index.search(vectors[:50], 10)
    assert not np.isin(found, keys[:50]).any()
    assert len(index) == 2950


def test_empty_and_wrong_shape() -> None:
    index = FaissIndex(8)
    scores, found = index.search(np.zeros((2, 8), np.float32), 5)
    assert scores.shape == (2, 0) and found.shape == (2, 0)
    with pytest.raises(ValueError):
        index.add(np.arange(3), np.zeros((3, 4), np.float32))
