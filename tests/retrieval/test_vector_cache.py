"""The content-keyed vector cache and the document identity that decides which vectors may be reused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from retrieval.vector_cache import VectorCache, document_identity, document_weight_files, text_key


def test_vectors_come_back_by_text_and_survive_reopening(tmp_path: Path) -> None:
    texts = ["第一条 为了惩罚犯罪", "第二条 保护人民", "第三条 罪刑法定"]
    vectors = np.eye(3, 4, dtype=np.float32)
    with VectorCache.for_identity(tmp_path, "a" * 64, 4) as cache:
        cache.put_many([text_key(t) for t in texts[:2]], vectors[:2])
    with VectorCache.for_identity(tmp_path, "a" * 64, 4) as cache:
        found = cache.get_many([text_key(t) for t in texts])
        assert len(cache) == 2
    assert set(found) == {text_key(texts[0]), text_key(texts[1])}
    np.testing.assert_array_equal(found[text_key(texts[1])], vectors[1])


def test_a_cache_file_refuses_another_identity_or_dimension(tmp_path: Path) -> None:
    VectorCache(tmp_path / "v.sqlite", "a" * 64, 4).close()
    with pytest.raises(ValueError, match="another embedder"):
        VectorCache(tmp_path / "v.sqlite", "b" * 64, 4)
    with pytest.raises(ValueError, match="dim 4"):
        VectorCache(tmp_path / "v.sqlite", "a" * 64, 8)


def test_a_slice_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    with VectorCache.for_identity(tmp_path, "a" * 64, 4) as cache, pytest.raises(ValueError, match="dim 4"):
        cache.put_many([text_key("x")], np.zeros((1, 5), np.float32))


def _model_dir(root: Path, *, query_adapter: bytes, doc_dense: bytes = b"dense") -> Path:
    """A sentence-transformers-shaped folder: weights, a dense layer and a Router whose query route differs."""
    root.mkdir(parents=True)
    (root / "model.safetensors").write_bytes(b"transformer weights")
    (root / "2_Dense").mkdir()
    (root / "2_Dense" / "model.safetensors").write_bytes(doc_dense)
    (root / "5_Router" / "query_0_Dense").mkdir(parents=True)
    (root / "5_Router" / "query_0_Dense" / "model.safetensors").write_bytes(query_adapter)
    (root / "5_Router" / "document_0_Normalize").mkdir()
    (root / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.Transformer"},
        {"idx": 1, "name": "1", "path": "2_Dense", "type": "sentence_transformers.Dense"},
        {"idx": 2, "name": "2", "path": "5_Router", "type": "sentence_transformers.base.modules.router.Router"},
    ]))
    return root


class DirEmbedder:
    """What document_identity reads from an embedder: its model reference, dim, config and document prompt."""

    def __init__(self, path: Path, prompt: str = "title: none | text: ", dim: int = 768) -> None:
        self.name, self.dim, self._prompt = str(path), dim, prompt

    def prompt_for(self, role: str) -> str:
        return self._prompt if role == "document" else "task: search result | query: "


def test_query_adapters_share_the_identity_of_their_base_weights(tmp_path: Path) -> None:
    legal = _model_dir(tmp_path / "legal-qa", query_adapter=b"legal adapter")
    medical = _model_dir(tmp_path / "medical-qa", query_adapter=b"medical adapter")
    other = _model_dir(tmp_path / "other", query_adapter=b"legal adapter", doc_dense=b"another dense layer")
    assert [p.relative_to(legal).as_posix() for p in document_weight_files(legal)] == [
        "model.safetensors", "2_Dense/model.safetensors"]
    assert document_identity(DirEmbedder(legal)) == document_identity(DirEmbedder(medical))
    assert document_identity(DirEmbedder(legal)) != document_identity(DirEmbedder(other))
    assert document_identity(DirEmbedder(legal)) != document_identity(DirEmbedder(legal, prompt="passage: "))
    assert document_identity(DirEmbedder(legal)) != document_identity(DirEmbedder(legal, dim=256))
    assert (legal / ".dossier-weights.json").is_file()  # the big file is hashed once


def test_an_embedder_without_a_model_folder_is_known_by_name_and_dimension() -> None:
    class Named:
        name, dim = "hash-bigrams", 64

    class Declared(Named):
        identity = "remote-embedder-v3"

    assert document_identity(Named()) != document_identity(Declared())
    assert document_identity(Named()) == document_identity(Named())


def test_onnx_runtimes_int8_is_another_embedder_but_onnx_fp32_and_openvino_are_not(tmp_path: Path) -> None:
    legal = _model_dir(tmp_path / "legal-qa", query_adapter=b"legal adapter")

    def with_backend(backend: str) -> DirEmbedder:
        embedder = DirEmbedder(legal)
        embedder.backend = backend
        return embedder

    torch_identity = document_identity(DirEmbedder(legal))
    assert document_identity(with_backend("torch")) == torch_identity
    assert document_identity(with_backend("onnx")) == torch_identity
    assert document_identity(with_backend("openvino")) == torch_identity
    assert document_identity(with_backend("openvino-int8")) == torch_identity  # min cosine 0.9990 of torch fp32
    assert document_identity(with_backend("onnx-int8")) != torch_identity  # min cosine 0.994
