"""One protocol per component family, one verb each, one return type."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from core.records import Hit, Retrieval

EmbedRole = Literal["query", "document"]


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str], role: EmbedRole = "document") -> np.ndarray:
        """(n, dim) float32, L2-normalised rows."""
        ...


@runtime_checkable
class Index(Protocol):
    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """vectors (q, dim) -> scores (q, k) float32, ids (q, k) int64 (-1 where fewer than k)."""
        ...


@runtime_checkable
class Retriever(Protocol):
    def retrieve(
        self, queries: Sequence[str], k: int | None = None, filters: Mapping[str, Any] | None = None
    ) -> list[Retrieval]:
        """One `Retrieval` per query, in order: the best `k` hits (None: the retriever's configured number) among
        the chunks whose metadata match `filters`. Batch-first: serving passes one query, evaluation many."""
        ...


@runtime_checkable
class Reranker(Protocol):
    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        """New hits, best first, scored by the reranker."""
        ...


@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class GenerationParams:
    max_new_tokens: int = 512
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    repetition_penalty: float = 1.0  # > 1 discourages repeats (transformers / vLLM; llama.cpp's repeat_penalty)


@runtime_checkable
class Generator(Protocol):
    name: str

    def load(self) -> Generator:
        """Load the model (or open the connection) now, once; construction stays cheap. Returns self."""
        ...

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        """The assistant's reply to the chat, whole."""
        ...

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        """The same reply, piece by piece as it is produced."""
        ...
