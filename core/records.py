"""Frozen records passed between stages. Stages return new records; nothing mutates its input."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Document:
    """One source document (a statute article, an answer passage, a file)."""

    doc_id: str
    text: str
    title: str = ""
    source: str = ""  # the file (or URL) it was read from
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A span of a document: `text == document.text[start:end]`."""

    chunk_id: str
    doc_id: str
    text: str
    start: int
    end: int
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Hit:
    """A chunk found for a query. `retriever` names the stage that produced `score` (a `core.stages` name);
    `stage_scores` keeps the score each stage gave it (e.g. {"dense": .81, "bm25": 12.3, "zscore": 1.7})."""

    chunk: Chunk
    score: float
    retriever: str
    stage_scores: Mapping[str, float] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Retrieval:
    """What a retriever found for one query: hits best first, and the milliseconds each stage took (for a batch,
    the stage times of the whole batch the query was part of; serving asks one query at a time)."""

    query: str
    hits: tuple[Hit, ...]
    timings_ms: Mapping[str, float] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Citation:
    """An `[n]` in an answer resolved to the exact span it quotes."""

    marker: int
    chunk_id: str
    doc_id: str
    title: str
    start: int
    end: int
    quote: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What the service returns: the text and its warrant."""

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    abstained: bool = False
    abstain_reason: str = ""
    disclaimer: str = ""
    trace: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
