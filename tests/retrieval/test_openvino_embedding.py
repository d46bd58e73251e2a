"""The OpenVINO backends on the real small MiniLM (skipped without the openvino extra), and the missing-extra error."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from core.errors import MissingDependency
from domains.config import EmbeddingConfig
from retrieval.embedders import SentenceTransformerEmbedder

TEXTS = ["The court sentenced the thief to three years in prison.", "Aspirin relieves headaches.",
         "盗窃公私财物，数额较大的，处三年以下有期徒刑。"]


def _torch_fp32(model_dir: str) -> np.ndarray:
    return SentenceTransformerEmbedder(model_dir, EmbeddingConfig(precision="fp32")).load().embed(TEXTS)


def test_openvino_fp32_matches_torch(minilm_dir: str) -> None:
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    embedder = SentenceTransformerEmbedder(minilm_dir, EmbeddingConfig(backend="openvino", precision="fp32")).load()
    assert (embedder.backend, embedder.precision, embedder.device) == ("openvino", "fp32", "cpu")
    vectors = embedder.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    np.testing.assert_allclose(vectors, _torch_fp32(minilm_dir), atol=1e-4)


def test_openvino_int8_weights_stay_close(minilm_dir: str) -> None:
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    pytest.importorskip("nncf", reason="the openvino extra is not installed")
    embedder = SentenceTransformerEmbedder(minilm_dir, EmbeddingConfig(backend="openvino-int8")).load()
    assert embedder.precision == "int8"
    vectors = embedder.embed(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.sum(vectors * _torch_fp32(minilm_dir), axis=1).min() > 0.98  # 0.999 here: int8 weights, bf16 / fp32 math


@pytest.mark.parametrize(("backend", "package"), [("openvino", "openvino"), ("openvino-int8", "nncf")])
def test_missing_openvino_names_the_extra(minilm_dir: str, monkeypatch: pytest.MonkeyPatch, tmp_path,
                                          backend: str, package: str) -> None:
    pytest.importorskip("onnxruntime", reason="the graph is exported with the onnx extra")
    monkeypatch.setenv("DOSSIER_CACHE_DIR", str(tmp_path))  # no IR cached from an earlier run
    if package == "openvino":
        monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    else:
        pytest.importorskip("openvino", reason="the openvino extra is not installed")
        monkeypatch.setitem(sys.modules, "nncf", None)
    embedder = SentenceTransformerEmbedder(minilm_dir, EmbeddingConfig(backend=backend))
    with pytest.raises(MissingDependency, match=rf"{package} is not installed.*dossier\[openvino\]"):
        embedder.load()
