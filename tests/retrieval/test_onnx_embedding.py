"""The exported-graph backends (onnx, onnx-int8) on the real small MiniLM, and how the export is keyed."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.errors import MissingDependency
from domains.config import EmbeddingConfig
from retrieval.embedders import SentenceTransformerEmbedder
from retrieval.onnx_embedding import export_key

TEXTS = ["The court sentenced the thief to three years in prison.", "Aspirin relieves headaches.",
         "A burglar stole a phone from the house.", "盗窃公私财物，数额较大的，处三年以下有期徒刑。"]


def _torch_fp32(model_dir: str, texts: list[str], role: str = "document") -> np.ndarray:
    embedder = SentenceTransformerEmbedder(model_dir, EmbeddingConfig(precision="fp32")).load()
    return embedder.embed(texts, role=role)


def test_int8_backend_embeds_unit_rows_close_to_torch(minilm_dir: str) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    int8 = SentenceTransformerEmbedder(minilm_dir, EmbeddingConfig(backend="onnx-int8", batch_size=2)).load()
    assert (int8.backend, int8.precision, int8.device) == ("onnx-int8", "int8", "cpu")
    vectors = int8.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(vectors * _torch_fp32(minilm_dir, TEXTS), axis=1)
    # int8 weights move MiniLM's vectors by a few thousandths of cosine (0.995-0.997 here): not the same function
    assert cosines.min() > 0.95 and cosines.max() < 0.99999
    query = int8.embed(["who stole the phone?"], role="query")
    assert int(np.argmax(vectors @ query[0])) == 2


def test_query_adapter_runs_after_the_graph(minilm_dir: str, tmp_path: Path) -> None:
    """A domain model is base + Router(query: Dense(A)): the graph holds the base, the adapter runs on its output."""
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from models.query_adapter import save_adapted_model

    adapter = np.eye(384, dtype=np.float32) + 0.05 * np.random.default_rng(0).standard_normal((384, 384))
    adapted = str(save_adapted_model(minilm_dir, adapter.astype(np.float32), tmp_path / "adapted"))
    onnx = SentenceTransformerEmbedder(adapted, EmbeddingConfig(backend="onnx")).load()
    queries = ["who stole the phone?", "headache medicine"]
    np.testing.assert_allclose(onnx.embed(queries, role="query"), _torch_fp32(adapted, queries, "query"), atol=1e-4)
    np.testing.assert_allclose(onnx.embed(TEXTS), _torch_fp32(minilm_dir, TEXTS), atol=1e-4)
    assert not np.allclose(onnx.embed(queries, role="query"), onnx.embed(queries), atol=1e-2)  # A was applied


def test_missing_onnxruntime_names_the_extra(minilm_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    embedder = SentenceTransformerEmbedder(minilm_dir, EmbeddingConfig(backend="onnx-int8"))
    with pytest.raises(MissingDependency, match=r"onnxruntime is not installed.*dossier\[onnx\]"):
        embedder.load()


class _Module:
    def __init__(self, config: dict) -> None:
        self.config = config

    def get_config_dict(self) -> dict:
        return dict(self.config)


def _fake_model(pooling: str = "mean", path: str = "/models/a") -> list:
    config = SimpleNamespace(model_type="bert", to_dict=lambda: {"hidden_size": 8, "_name_or_path": path})
    return [SimpleNamespace(auto_model=SimpleNamespace(config=config)), _Module({"pooling_mode": pooling})]


def test_export_key_follows_the_weights_and_modules_not_the_name(tmp_path: Path) -> None:
    first, second = tmp_path / "base", tmp_path / "base-legal-qa"
    for folder in (first, second):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"weights v1")
    key = export_key(_fake_model(path=str(first)), str(first))
    assert export_key(_fake_model(path=str(second)), str(second)) == key  # same document path: one export
    assert export_key(_fake_model("cls"), str(first)) != key  # another pooling computes another function
    (first / "model.safetensors").write_bytes(b"weights v2, changed")
    assert export_key(_fake_model(), str(first)) != key  # a changed model re-exports
