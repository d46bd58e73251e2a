"""Retrieved passages -> the numbered context block of a prompt ([1] title: text ...), cut to a budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.protocols import Retriever
from core.records import Chunk, Hit
from training.args import Recipe

OVERFETCH = 5  # retrieve this many times more hits than needed, so a metadata filter still leaves enough


def _matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return all(metadata.get(key) == value for key, value in wanted.items())


def top_chunks(retriever: Retriever, query: str, k: int, wanted: Mapping[str, Any]) -> list[Chunk]:
    hits: list[Hit] = retriever.retrieve(query, k * OVERFETCH if wanted else k)
    return [h.chunk for h in hits if _matches(h.chunk.metadata, wanted)][:k]


def format_context(chunks: Sequence[Chunk], recipe: Recipe) -> str:
    """Numbered from 1, in the given order; each passage cut to data.passage_chars characters."""
    item, limit = recipe.prompts.context_item, recipe.data.passage_chars
    return "\n".join(
        item.format(n=n, title=c.title, text=c.text[:limit]) for n, c in enumerate(chunks, start=1)
    )


def context_block(retriever: Retriever, query: str, recipe: Recipe) -> str:
    return format_context(top_chunks(retriever, query, recipe.data.passages, recipe.data.context_filter), recipe)
