"""The bundle's query embedder: the ONNX int8 graph of the domain's sentence-transformers model run by onnxruntime,
its fast tokenizer read by `tokenizers`, and the model's query route (a query adapter: Dense then Normalize) in
numpy. No torch, no transformers.

It reuses the product's ONNX path (`retrieval.onnx_embedding.OnnxSentenceEncoder`: length-sorted batches, the same
feeds) and its Matryoshka truncation, so for the same graph its vectors are the `onnx-int8` backend's: the export
checks that on sample queries (`edge.export.embedder`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.protocols import EmbedRole
from edge.errors import BundleError
from edge.layout import EMBEDDER_CONFIG, EMBEDDER_GRAPH, EMBEDDER_TOKENIZER, QUERY_ROUTE, WEIGHTS_ONLY
from retrieval.embedders import l2_normalise, truncate_matryoshka
from retrieval.onnx_embedding import OnnxSentenceEncoder, ort_run

log = logging.getLogger(__name__)


class FastTokenizer:
    """The slice of a transformers tokenizer's `__call__` that `OnnxSentenceEncoder` uses, over `tokenizers`."""

    def __init__(self, path: Path, pad_id: int, pad_token: str, padding_side: str) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self._pad = {"pad_id": pad_id, "pad_token": pad_token, "direction": padding_side}

    def __call__(self, texts: list[str], *, padding: bool, truncation: bool, max_length: int,
                 return_tensors: str) -> dict[str, np.ndarray]:
        assert return_tensors == "np" and padding and truncation  # the only call OnnxSentenceEncoder makes
        self._tok.enable_truncation(max_length)
        self._tok.enable_padding(**self._pad)
        encoded = self._tok.encode_batch(texts)  # add_special_tokens: the post-processor, as transformers does
        return {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64)}


def apply_route(vectors: np.ndarray, steps: Sequence[str], weights: Any) -> np.ndarray:
    """The query route on (n, d) float32 vectors: "dense" (x W^T + b, identity activation) or "normalize"."""
    for i, step in enumerate(steps):
        if step == "dense":
            vectors = vectors @ weights[f"{i}.weight"].T
            if f"{i}.bias" in weights:
                vectors = vectors + weights[f"{i}.bias"]
        elif step == "normalize":
            vectors = l2_normalise(vectors)
        else:
            raise BundleError(f"query route step {step!r} is not one the edge runs (dense, normalize)")
    return vectors.astype(np.float32)


class EdgeQueryEmbedder:
    """`embed(texts, role) -> (n, dim)` float32, L2-normalised; `name` / `dim` / `precision` / `backend` are what
    the index manifest is checked against (retrieval.store.check_embedder)."""

    def __init__(self, directory: Path, threads: int = 1, batch_size: int = 32) -> None:
        self.directory = directory
        self.threads = threads
        self.batch_size = batch_size
        self.config: dict[str, Any] = json.loads((directory / EMBEDDER_CONFIG).read_text(encoding="utf-8"))
        self.name: str = self.config["name"]
        self.dim: int = int(self.config["dim"])
        # weight-only int8 computes in fp32 (edge.export.int8_weights); the other graphs quantise activations too
        weights_only = self.config.get("int8") == WEIGHTS_ONLY
        self.precision = "fp32" if weights_only else "int8"
        self.backend = "onnx" if weights_only else "onnx-int8"
        self._encoder: OnnxSentenceEncoder | None = None
        self._route: dict[str, np.ndarray] = {}

    def load(self) -> EdgeQueryEmbedder:
        if self._encoder is not None:
            return self
        cfg = self.config
        tokenizer = FastTokenizer(self.directory / EMBEDDER_TOKENIZER, cfg["pad_id"], cfg["pad_token"],
                                  cfg["padding_side"])
        run = ort_run(self.directory / EMBEDDER_GRAPH, self.threads)
        self._encoder = OnnxSentenceEncoder(run, tokenizer, int(cfg["max_length"]))
        if cfg["query_route"]:
            with np.load(self.directory / QUERY_ROUTE) as route:
                self._route = {key: route[key].astype(np.float32) for key in route.files}
        log.info("edge embedder %s: %s, dim %d, query route %s", self.name, cfg.get("graph", "onnx int8"), self.dim,
                 cfg["query_route"])
        return self

    def embed(self, texts: Sequence[str], role: EmbedRole = "query") -> np.ndarray:
        if self._encoder is None:
            raise RuntimeError("EdgeQueryEmbedder.embed() before load()")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prompt = self.config["prompts"].get(role, "")
        vectors = self._encoder.encode([prompt + t for t in texts], self.batch_size)
        if role == "query":
            vectors = apply_route(vectors, self.config["query_route"], self._route)
        return truncate_matryoshka(vectors, self.dim)
