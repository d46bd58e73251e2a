"""The query-adapter embedder recipe: the fit learns a synthetic query->document mapping, picks the epoch on dev,
and the saved sentence-transformers dir maps queries but leaves document vectors exactly as the base model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.models import is_fetched, model_dir
from training.query_adapter import AdapterArgs, apply_adapter, fit_adapter, positives_matrix, recall_at


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _synthetic(n_docs: int = 40, n_queries: int = 200, dim: int = 16, seed: int = 0):  # type: ignore[no-untyped-def]
    """Queries are a fixed rotation of their gold document plus noise: the base (identity) ranks them poorly."""
    rng = np.random.default_rng(seed)
    docs = _unit(rng.normal(size=(n_docs, dim)))
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    gold = rng.integers(0, n_docs, size=n_queries)
    queries = _unit(docs[gold] @ rotation.T + 0.05 * rng.normal(size=(n_queries, dim)))
    return queries, docs, positives_matrix([[g] for g in gold], n_docs)


def test_adapter_learns_the_mapping_and_keeps_best_dev_epoch() -> None:
    q, docs, pos = _synthetic()
    train, dev = slice(0, 150), slice(150, 200)
    base = recall_at(q[dev], docs, pos[dev], 1)
    adapter, history = fit_adapter(q[train], docs, pos[train], AdapterArgs(epochs=30, lr=0.05, batch_size=32),
                                   dev=(q[dev], pos[dev]), k=1)
    tuned = recall_at(apply_adapter(q[dev], adapter), docs, pos[dev], 1)
    assert not np.allclose(adapter, np.eye(16))
    assert tuned > base + 0.3 and tuned == pytest.approx(max(h["dev_recall"] for h in history))
    assert all(np.isfinite(h["loss"]) for h in history[1:])


def test_positives_and_recall_hand_computed() -> None:
    pos = positives_matrix([[0, 2], [1]], 3)
    assert pos.tolist() == [[True, False, True], [False, True, False]]
    docs = np.eye(3, dtype=np.float32)
    queries = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    assert recall_at(queries, docs, pos, 1) == pytest.approx((0.5 + 0.0) / 2)


@pytest.mark.skipif(not is_fetched("all-minilm-l6-v2"), reason="needs: dossier models fetch all-minilm-l6-v2")
def test_saved_model_maps_queries_only(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from training.query_adapter import save_adapted_model

    base_dir = str(model_dir("all-minilm-l6-v2"))
    rng = np.random.default_rng(0)
    adapter = (np.eye(384) + 0.2 * rng.normal(size=(384, 384))).astype(np.float32)
    save_adapted_model(base_dir, adapter, tmp_path / "tuned")
    base = SentenceTransformer(base_dir, device="cpu")
    tuned = SentenceTransformer(str(tmp_path / "tuned"), device="cpu")
    texts = ["interest rates rose", "a merger was announced"]
    np.testing.assert_allclose(tuned.encode_document(texts), base.encode_document(texts, normalize_embeddings=True),
                               atol=1e-5)
    expected = apply_adapter(base.encode_query(texts, normalize_embeddings=True), adapter)
    np.testing.assert_allclose(tuned.encode_query(texts), expected, atol=1e-4)
