"""Which runtime embeds new documents: `embedding.document_backend` and what "auto" resolves to."""

from __future__ import annotations

import importlib.util

import pytest

from domains import load_domain
from domains.config import EmbeddingConfig
from rag.build_retrieval import build_document_embedder, build_embedder, document_backend


def _with_modules(monkeypatch: pytest.MonkeyPatch, present: set[str]) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name in present else (None if name in {"openvino", "nncf"}
                                                                            else real(name, *a)))


def test_auto_takes_openvino_int8_where_the_extra_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_modules(monkeypatch, {"openvino", "nncf"})
    assert document_backend(EmbeddingConfig()) == "openvino-int8"


def test_auto_keeps_the_query_backend_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_modules(monkeypatch, {"openvino"})  # nncf missing: no int8 compression
    assert document_backend(EmbeddingConfig()) == "torch"


def test_auto_never_mixes_a_runtime_whose_vectors_are_another_embedders(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_modules(monkeypatch, {"openvino", "nncf"})
    assert document_backend(EmbeddingConfig(backend="onnx-int8")) == "onnx-int8"


def test_an_explicit_choice_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_modules(monkeypatch, {"openvino", "nncf"})
    assert document_backend(EmbeddingConfig(document_backend="torch")) == "torch"


def test_the_document_embedder_is_the_query_embedder_when_the_backends_agree(monkeypatch: pytest.MonkeyPatch,
                                                                              ) -> None:
    _with_modules(monkeypatch, set())
    cfg = load_domain("legal")
    query = build_embedder(cfg)
    assert build_document_embedder(cfg, query) is query


def test_another_document_backend_is_a_second_unloaded_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_modules(monkeypatch, {"openvino", "nncf"})
    cfg = load_domain("legal")
    query = build_embedder(cfg)
    documents = build_document_embedder(cfg, query)
    assert documents is not query and documents.backend == "openvino-int8" and documents.name == query.name
    assert documents._model is None  # loaded by DocumentVectors only when something must be embedded
