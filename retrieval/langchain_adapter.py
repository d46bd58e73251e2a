"""A LangChain `BaseRetriever` over any Dossier retriever, so it drops into a LangChain chain."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from core.records import Hit


def hit_to_document(hit: Hit) -> Document:
    """page_content is the chunk text; metadata carries the chunk's own metadata plus its ids, span and scores."""
    chunk = hit.chunk
    metadata: dict[str, Any] = {
        **dict(chunk.metadata),
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "start": chunk.start,
        "end": chunk.end,
        "score": hit.score,
        "retriever": hit.retriever,
        "stage_scores": dict(hit.stage_scores),
    }
    return Document(page_content=chunk.text, metadata=metadata, id=chunk.chunk_id)


class LangchainRetriever(BaseRetriever):
    """`LangchainRetriever(retriever=hybrid, k=5, filters={"status": "现行有效"}).invoke("盗窃罪")`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Any  # a core.protocols.Retriever, e.g. HybridRetriever
    k: int = 5
    filters: dict[str, Any] | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        found = self.retriever.retrieve([query], self.k, self.filters)[0]
        return [hit_to_document(h) for h in found.hits]
