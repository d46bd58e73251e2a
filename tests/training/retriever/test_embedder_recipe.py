"""The query-adapter embedder recipe: the fit learns a synthetic query->document mapping, picks the epoch on dev,
and the saved sentence-transformers dir maps queries but leaves document vectors exactly as the base model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.registry import is_fetched, model_dir
from training.retriever.query_adapter import AdapterArgs, apply_adapter, fit_adapter, positives_matrix, recall_at


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

    from models.query_adapter import save_adapted_model

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


def test_adapter_file_round_trip_is_close_and_small(tmp_path: Path) -> None:
    from models.query_adapter import read_adapter_file, write_adapter_file

    rng = np.random.default_rng(1)
    adapter = (np.eye(64) + 0.05 * rng.normal(size=(64, 64))).astype(np.float32)
    path = write_adapter_file(adapter, tmp_path / "a.npz")
    back = read_adapter_file(path)
    assert back.dtype == np.float32 and back.shape == (64, 64)
    assert np.abs(back - adapter).max() < 1e-4
    assert path.stat().st_size < adapter.nbytes * 0.6
    np.savez_compressed(tmp_path / "bad.npz", delta=np.zeros((3, 4), dtype=np.float16))
    with pytest.raises(ValueError, match="not a square"):
        read_adapter_file(tmp_path / "bad.npz")


def test_every_shipped_adapter_matches_its_registry_pin() -> None:
    """The tuned embedders a domain.toml names are rebuilt from files in the repo: those files must be the ones the
    registry pins (a retrained adapter copied in without updating models/registry.py would fail `models fetch`)."""
    from core.hashing import sha256_file
    from domains import DOMAINS_DIR, available_domains, load_domain
    from models.query_adapter import read_adapter_file
    from models.registry import MODELS

    shipped = [spec for spec in MODELS.values() if spec.assembly == "query-adapter"]
    assert {spec.name for spec in shipped} >= {load_domain(d).models.embedder for d in available_domains()}
    for spec in shipped:
        path = DOMAINS_DIR / spec.adapter_file
        assert path.stat().st_size == spec.size and sha256_file(path) == spec.sha256, spec.name
        adapter = read_adapter_file(path)
        assert adapter.shape == (768, 768) and np.abs(adapter - np.eye(768)).max() < 0.5


@pytest.mark.skipif(not is_fetched("all-minilm-l6-v2"), reason="needs: dossier models fetch all-minilm-l6-v2")
def test_fetch_builds_a_shipped_adapter_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real orchestration: `fetch_spec` of a query-adapter spec over an already fetched base, with the CLI's
    builder; the built dir encodes queries through the adapter, and a re-run is a no-op."""
    import hashlib
    import shutil
    from dataclasses import replace

    from sentence_transformers import SentenceTransformer

    import training.retriever.query_adapter as qa
    from models.fetch import fetch_spec
    from models.query_adapter import build_adapted_model, read_adapter_file, write_adapter_file
    from models.registry import MODELS

    root = tmp_path / "models"
    root.mkdir()
    shutil.copytree(model_dir("all-minilm-l6-v2"), root / "all-minilm-l6-v2")
    domains = tmp_path / "domains"
    rng = np.random.default_rng(2)
    adapter = (np.eye(384) + 0.05 * rng.normal(size=(384, 384))).astype(np.float32)
    shipped = write_adapter_file(adapter, domains / "demo" / "models" / "minilm-demo-qa.npz")
    monkeypatch.setattr("domains.DOMAINS_DIR", domains)
    data = shipped.read_bytes()
    spec = replace(MODELS["embeddinggemma-300m-legal-qa"], name="minilm-demo-qa", derived_from="all-minilm-l6-v2",
                   adapter_file="demo/models/minilm-demo-qa.npz", sha256=hashlib.sha256(data).hexdigest(),
                   size=len(data))
    specs = {**MODELS, spec.name: spec}
    result = fetch_spec(spec, root, adapt=build_adapted_model, specs=specs)
    assert result.fetched and (result.path / "query_adapter.npz").read_bytes() == data
    tuned = SentenceTransformer(str(result.path), device="cpu")
    base = SentenceTransformer(str(root / "all-minilm-l6-v2"), device="cpu")
    base_query = base.encode_query(["a loan"], normalize_embeddings=True)
    expected = qa.apply_adapter(base_query, read_adapter_file(shipped))
    np.testing.assert_allclose(tuned.encode_query(["a loan"]), expected, atol=1e-4)
    assert not fetch_spec(spec, root, adapt=build_adapted_model, specs=specs).fetched


def test_extra_pairs_read_first_user_and_assistant_turns(tmp_path: Path) -> None:
    import gzip
    import json
    from dataclasses import replace

    from core.errors import ConfigError
    from domains import load_domain
    from training.retriever.embedder import load_extra_pairs, recipe_for

    rows = [
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "头痛怎么办？"},
                      {"role": "assistant", "content": "多休息。"}]},
        {"messages": [{"role": "user", "content": "只有问题"}]},
        {"messages": [{"role": "user", "content": "发烧吃什么药？"},
                      {"role": "assistant", "content": "对乙酰氨基酚。"}]},
    ]
    path = tmp_path / "pairs.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    cfg, recipe = load_domain("medical"), replace(recipe_for("medical"), extra_pairs=str(path))
    assert load_extra_pairs(cfg, recipe) == [("头痛怎么办？", "多休息。"), ("发烧吃什么药？", "对乙酰氨基酚。")]
    assert load_extra_pairs(cfg, replace(recipe, max_extra=1)) == [("头痛怎么办？", "多休息。")]
    assert load_extra_pairs(cfg, replace(recipe, extra_pairs="")) == []
    with pytest.raises(ConfigError, match="not found"):
        load_extra_pairs(cfg, replace(recipe, extra_pairs=str(tmp_path / "missing.jsonl")))


def test_dev_is_ranked_over_dev_docs_only() -> None:
    """Extra training answers must not act as distractors when dev decides the epoch."""
    q, docs, pos = _synthetic()
    extra = _unit(np.random.default_rng(5).normal(size=(500, 16)))
    padded = np.concatenate([pos, np.zeros((len(pos), 500), dtype=bool)], axis=1)
    _, history = fit_adapter(q[:150], np.concatenate([docs, extra]), padded[:150], AdapterArgs(epochs=1),
                             dev=(q[150:], pos[150:]), k=1, dev_docs=docs)
    assert history[0]["dev_recall"] == pytest.approx(recall_at(q[150:], docs, pos[150:], 1))
