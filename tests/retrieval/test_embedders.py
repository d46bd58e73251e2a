"""The real sentence-transformers path, on the small English MiniLM (skipped when it is not fetched)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from core import hardware
from core.errors import ConfigError
from domains.config import EmbeddingConfig
from retrieval.embedders import SentenceTransformerEmbedder, truncate_matryoshka

TEXTS = ["The court sentenced the thief to three years in prison.", "Aspirin relieves headaches.",
         "A burglar stole a phone from the house."]


def test_normalised_float32_and_retrieval_sense(minilm_dir: str) -> None:
    embedder = SentenceTransformerEmbedder(minilm_dir, EmbeddingConfig(precision="fp32", batch_size=2)).load()
    docs = embedder.embed(TEXTS)
    assert docs.dtype == np.float32 and docs.shape == (3, 384) and embedder.dim == 384
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    query = embedder.embed(["who stole the phone?"], role="query")
    assert int(np.argmax(docs @ query[0])) == 2
    assert embedder.embed([]).shape == (0, 384)


def test_bf16_close_to_fp32_and_matryoshka(minilm_dir: str) -> None:
    fp32 = SentenceTransformerEmbedder(minilm_dir, EmbeddingConfig(precision="fp32")).load().embed(TEXTS)
    bf16 = SentenceTransformerEmbedder(minilm_dir, EmbeddingConfig(precision="bf16")).load().embed(TEXTS)
    assert np.min(np.sum(fp32 * bf16, axis=1)) > 0.99  # bf16 keeps the direction
    small = SentenceTransformerEmbedder(minilm_dir, EmbeddingConfig(precision="fp32", dim=128)).load()
    out = small.embed(TEXTS)
    assert out.shape == (3, 128) and small.dim == 128
    np.testing.assert_allclose(out, truncate_matryoshka(fp32, 128), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_embed_before_load_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="load"):
        SentenceTransformerEmbedder("all-minilm-l6-v2").embed(["x"])


def test_onnx_backend_matches_torch(minilm_dir: str) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    torch_vecs = SentenceTransformerEmbedder(minilm_dir, EmbeddingConfig(precision="fp32")).load().embed(TEXTS)
    onnx = SentenceTransformerEmbedder(minilm_dir, EmbeddingConfig(backend="onnx", batch_size=2)).load()
    assert onnx.precision == "fp32" and onnx.backend == "onnx"
    np.testing.assert_allclose(onnx.embed(TEXTS), torch_vecs, atol=1e-4)


@pytest.mark.parametrize(("flags", "precision", "why"), [
    ("avx2 fma", "fp32", "auto: this CPU has no native bf16"),
    ("avx2 avx512f avx512_bf16", "bf16", "auto: this CPU has native bf16"),
])
def test_auto_resolves_for_the_cpu_and_says_so(minilm_dir: str, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture, flags: str, precision: str,
                                               why: str) -> None:
    # the CPU is injected: the test means the same on any machine
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags.split()))
    monkeypatch.setattr(hardware, "torch_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(hardware, "cuda_available", lambda: False)
    embedder = SentenceTransformerEmbedder(minilm_dir, EmbeddingConfig())
    assert (embedder.cfg.precision, embedder.cfg.device) == ("auto", "auto")
    with caplog.at_level(logging.INFO, logger="retrieval.embedders"):
        embedder.load()
    assert embedder.precision == precision and embedder.device == "cpu"
    assert next(embedder._model.parameters()).dtype == (_torch().bfloat16 if precision == "bf16" else _torch().float32)
    assert f"precision {precision} ({why}), device cpu (auto: no CUDA GPU)" in caplog.text
    assert embedder.embed(TEXTS).dtype == np.float32  # the contract does not change with the precision


def test_cuda_asked_without_a_gpu_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cuda_available", lambda: False)
    with pytest.raises(ConfigError, match="device = 'cuda'"):
        SentenceTransformerEmbedder("all-minilm-l6-v2", EmbeddingConfig(device="cuda")).load()


def _torch():
    import torch

    return torch


def test_config_refuses_an_unknown_backend() -> None:
    from domains.config_parse import parse_section

    assert parse_section(EmbeddingConfig, {"backend": "onnx-int8"}, "embedding").backend == "onnx-int8"
    with pytest.raises(ConfigError, match=r"embedding: backend: 'tensorrt' is not valid; choose one of: onnx, "
                                          r"onnx-int8, openvino, openvino-int8, torch"):
        parse_section(EmbeddingConfig, {"backend": "tensorrt"}, "embedding")
