"""Sentence-transformers embedders: torch (fp32 / bf16, CPU / CUDA), ONNX Runtime or OpenVINO (fp32 / bf16 or int8
weights, CPU), L2-normalised float32 (n, dim).

Construction is cheap; `load()` reads the weights onto the device and in the precision that `core.hardware` picks
for "auto" (bf16 only where the hardware computes in it) and logs the choice with its reason. The model reference
goes through the registry (`models.registry.resolve_model`), so a registry name, a local directory or a hub id all
work.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.hardware import Choice, Placement, choose_placement, precision_choice
from core.protocols import EmbedRole
from domains.config import EmbeddingConfig
from models.registry import resolve_model

log = logging.getLogger(__name__)

# backends that run the model's exported ONNX graph on the CPU (retrieval/onnx_embedding.py, openvino_embedding.py)
GRAPH_BACKENDS = ("onnx", "onnx-int8", "openvino", "openvino-int8")


def graph_placement(backend: str, precision: str) -> Placement:
    """onnxruntime computes in fp32 (the graph is exported from fp32 weights); OpenVINO in the precision "auto" picks
    for the CPU. The int8 backends store int8 weights and say so: their vectors are another function of the model."""
    cpu = Choice("cpu", f"the {backend} backend runs on the CPU")
    if backend.startswith("onnx"):
        compute = Choice("fp32", "onnxruntime runs the graph exported in fp32")
    else:
        compute = precision_choice(precision, "cpu")
    if backend.endswith("-int8"):
        return Placement(cpu, Choice("int8", f"int8 weights, {compute.value} activations ({compute.reason})"))
    return Placement(cpu, compute)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, d) float32 with unit rows (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def truncate_matryoshka(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Keep the first `dim` coordinates (Matryoshka) and re-normalise; dim 0 keeps all."""
    if dim <= 0 or dim >= vectors.shape[1]:
        return l2_normalise(vectors)
    return l2_normalise(vectors[:, :dim])


class SentenceTransformerEmbedder:
    """`embed(texts, role)` with the model's own query / document prompts when it defines them
    (EmbeddingGemma: "task: search result | query: " and "title: none | text: ")."""

    def __init__(self, model: str, cfg: EmbeddingConfig | None = None, *, show_progress: bool = True) -> None:
        self.name = model
        self.cfg = cfg = cfg or EmbeddingConfig()
        self.dim = cfg.dim  # the real dimension is known after load() when cfg.dim is 0
        self.show_progress = show_progress
        self._model: Any = None
        self._onnx: Any = None
        self._placement: Placement | None = None

    @property
    def backend(self) -> str:
        return self.cfg.backend

    @property
    def precision(self) -> str:
        """The precision the vectors are computed in ("auto" resolved for this machine; the manifest records it)."""
        return self.placement.precision.value

    @property
    def device(self) -> str:
        return self.placement.device.value

    @property
    def placement(self) -> Placement:
        """Resolved once: the CPU flags and CUDA check are cheap, and no weights are read for them."""
        if self._placement is None:
            if self.cfg.backend in GRAPH_BACKENDS:
                self._placement = graph_placement(self.cfg.backend, self.cfg.precision)
            else:
                self._placement = choose_placement(self.cfg.precision, self.cfg.device)
        return self._placement

    def load(self) -> SentenceTransformerEmbedder:
        if self._model is not None:
            return self
        import torch
        from sentence_transformers import SentenceTransformer

        placed = self.placement  # first: a device that is not there fails before any file is read
        torch.set_num_threads(max(1, self.cfg.threads))
        path = resolve_model(self.name)
        local = os.path.isdir(path)  # else a hub id
        model = SentenceTransformer(path, device=placed.device.value, local_files_only=local)
        model.max_seq_length = min(self.cfg.max_seq_length, model.max_seq_length or self.cfg.max_seq_length)
        match (self.cfg.backend, placed.precision.value):
            case ("torch", "bf16"):
                model = model.to(torch.bfloat16)
            case ("torch", "fp32"):
                pass
            case ("onnx" | "onnx-int8", _):
                from retrieval.onnx_embedding import OnnxSentenceEncoder

                int8 = self.cfg.backend == "onnx-int8"
                self._onnx = OnnxSentenceEncoder.for_model(model, path, threads=self.cfg.threads, int8=int8)
            case ("openvino" | "openvino-int8", _):
                from retrieval.openvino_embedding import openvino_encoder

                compute = precision_choice(self.cfg.precision, "cpu").value
                self._onnx = openvino_encoder(model, path, threads=self.cfg.threads, precision=compute,
                                              int8=self.cfg.backend == "openvino-int8")
        model.eval()
        self._model = model
        full_dim = int(model.get_embedding_dimension() or 0)
        self.dim = self.cfg.dim if 0 < self.cfg.dim < full_dim else full_dim
        log.info("embedder %s: %s, backend %s, dim %d", self.name, placed.describe(), self.cfg.backend, self.dim)
        return self

    def prompt_for(self, role: EmbedRole) -> str:
        """The text the model puts before inputs of this role ('' if it defines none)."""
        prompts = getattr(self._model, "prompts", None) or {}
        return str(prompts.get(role, ""))

    def embed(self, texts: Sequence[str], role: EmbedRole = "document") -> np.ndarray:
        """(n, dim) float32, L2-normalised rows; a progress bar for long batches."""
        if self._model is None:
            raise RuntimeError("SentenceTransformerEmbedder.embed() before load()")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = list(texts)
        progress = self.show_progress and len(texts) > 4 * self.cfg.batch_size
        if self._onnx is not None:
            prompt = self.prompt_for(role)
            vectors = self._onnx.encode([prompt + t for t in texts], self.cfg.batch_size, progress, role)
        else:
            vectors = self._encode_torch(texts, role, progress)
        return truncate_matryoshka(vectors, self.dim)

    def _encode_torch(self, texts: list[str], role: EmbedRole, progress: bool) -> np.ndarray:
        import torch

        encode = self._model.encode_query if role == "query" else self._model.encode_document
        with torch.inference_mode():
            out = encode(
                texts,
                batch_size=self.cfg.batch_size,
                show_progress_bar=progress,
                convert_to_tensor=True,
                normalize_embeddings=False,
            )
        return out.float().cpu().numpy()
