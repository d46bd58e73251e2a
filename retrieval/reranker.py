"""Cross-encoder reranking over sentence-transformers `CrossEncoder`; returns new hits scored by the model.

Device and precision: "auto" as for the embedder (`core.hardware`), resolved and logged at `load()`."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from core.hardware import Placement, choose_placement
from core.records import Hit
from core.stages import Stage
from models.registry import resolve_model

log = logging.getLogger(__name__)


class CrossEncoderReranker:
    """`rerank(query, hits)` -> new hits, best first, retriever "rerank", stage_scores gain "rerank"."""

    def __init__(self, model: str, *, batch_size: int = 16, max_length: int = 512, precision: str = "auto",
                 device: str = "auto", threads: int = 1) -> None:
        self.name = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.requested = (precision, device)
        self.threads = threads
        self._model: Any = None
        self._placement: Placement | None = None

    @property
    def placement(self) -> Placement:
        if self._placement is None:
            self._placement = choose_placement(*self.requested)
        return self._placement

    @property
    def precision(self) -> str:
        return self.placement.precision.value

    def load(self) -> CrossEncoderReranker:
        if self._model is not None:
            return self
        import torch
        from sentence_transformers import CrossEncoder

        placed = self.placement  # first: a device that is not there fails before any file is read
        torch.set_num_threads(max(1, self.threads))
        path = resolve_model(self.name)
        model = CrossEncoder(path, device=placed.device.value, max_length=self.max_length,
                             local_files_only=os.path.isdir(path))
        tokenizer = model.tokenizer
        if getattr(tokenizer, "chat_template", None):
            # sentence-transformers 6.2 routes (query, document) pairs through the tokenizer's chat template when
            # it has one (a "message" modality) and raises for a plain classifier: score raw pairs (MODELS.md).
            tokenizer.chat_template = None
            for module in model:
                getattr(module, "modality_config", {}).pop("message", None)
            log.info("removed the chat template from reranker %s's tokenizer", self.name)
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
            model.model.config.pad_token_id = tokenizer.pad_token_id
        if placed.precision.value == "bf16":
            model.model.to(torch.bfloat16)
        model.model.eval()
        self._model = model
        log.info("reranker %s: %s", self.name, placed.describe())
        return self

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text (higher is better)."""
        if self._model is None:
            raise RuntimeError("CrossEncoderReranker.score() before load()")
        if not texts:
            return []
        import torch

        with torch.inference_mode():
            scores = self._model.predict([(query, t) for t in texts], batch_size=self.batch_size,
                                         show_progress_bar=False, convert_to_numpy=True)
        return [float(s) for s in scores.reshape(len(texts), -1)[:, -1]]  # a 2-label head: the "relevant" logit

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        scores = self.score(query, [h.chunk.text for h in hits])
        rescored = [
            replace(h, score=s, retriever=Stage.RERANK, stage_scores={**h.stage_scores, Stage.RERANK: s})
            for h, s in zip(hits, scores, strict=True)
        ]
        return sorted(rescored, key=lambda h: -h.score)  # stable: equal scores keep the earlier order
