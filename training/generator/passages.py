"""Retrieved passages for a training prompt: the top hits (optionally only those whose metadata match), and the
numbered context block of a task's own prompt (charge prediction; the RAG task uses rag.prompting instead)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.protocols import Retriever
from core.records import Hit
from training.args import Recipe

OVERFETCH = 5  # retrieve this many times more hits than needed, so a metadata filter still leaves enough


def _matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return all(metadata.get(key) == value for key, value in wanted.items())


def top_hits(retriever: Retriever, query: str, k: int, wanted: Mapping[str, Any]) -> list[Hit]:
    found = retriever.retrieve([query], k * OVERFETCH if wanted else k)[0]
    return [h for h in found.hits if _matches(h.chunk.metadata, wanted)][:k]


def format_context(hits: Sequence[Hit], recipe: Recipe) -> str:
    """Numbered from 1, in the given order; each passage cut to data.passage_chars characters."""
    item, limit = recipe.prompts.context_item, recipe.data.passage_chars
    return "\n".join(
        item.format(n=n, title=h.chunk.title, text=h.chunk.text[:limit]) for n, h in enumerate(hits, start=1)
    )


def context_block(retriever: Retriever, query: str, recipe: Recipe) -> str:
    return format_context(top_hits(retriever, query, recipe.data.passages, recipe.data.context_filter), recipe)
