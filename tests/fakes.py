"""Protocol fakes shared by the unit tests: a retriever that answers from a function, a scripted generator.
They implement `core.protocols` exactly, so a test that passes with them exercises the real contract."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from core.protocols import GenerationParams, Message
from core.records import Hit, Retrieval


class FunctionRetriever:
    """`hits_for(query)` -> hits best first; records every query and the filters it was asked with."""

    def __init__(self, hits_for: Callable[[str], Sequence[Hit]]) -> None:
        self.hits_for = hits_for
        self.queries: list[str] = []
        self.filters: list[Mapping[str, Any] | None] = []

    def retrieve(
        self, queries: Sequence[str], k: int | None = None, filters: Mapping[str, Any] | None = None
    ) -> list[Retrieval]:
        self.queries += queries
        self.filters.append(filters)
        return [Retrieval(q, tuple(self.hits_for(q))[: k or None], {"fake": 0.0}) for q in queries]


def fixed_retriever(hits: Sequence[Hit]) -> FunctionRetriever:
    """The same hits for every query."""
    return FunctionRetriever(lambda _query: hits)


class ScriptedGenerator:
    """Replies with the given texts in order; records the messages of every call."""

    name = "scripted"

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls: list[Sequence[Message]] = []

    def load(self) -> ScriptedGenerator:
        return self

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        self.calls.append(messages)
        return self.replies.pop(0)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        text = self.generate(messages, params)
        yield from (text[i : i + 3] for i in range(0, len(text), 3))


def retrieve_one(retriever: Any, query: str, k: int | None = None,
                 filters: Mapping[str, Any] | None = None) -> Retrieval:
    """One query through the batch-first `Retriever.retrieve`."""
    return retriever.retrieve([query], k, filters)[0]


def hits_of(retriever: Any, query: str, k: int | None = None, filters: Mapping[str, Any] | None = None) -> list[Hit]:
    return list(retrieve_one(retriever, query, k, filters).hits)
