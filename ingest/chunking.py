"""Document -> chunks, by the domain's strategy. Chunk ids are `<doc_id>#c<index>`, stable across runs as long as
the document text and the chunking config are the same; every chunk's text is `document.text[start:end]`."""

from __future__ import annotations

from core.records import Chunk, Document
from domains.config import ChunkingConfig
from ingest.segment import Span, pack, sentence_spans, trim
from ingest.statute_chunker import statute_spans


def chunk_spans(text: str, cfg: ChunkingConfig) -> list[Span]:
    match cfg.strategy:
        case "statute":
            spans = statute_spans(text, cfg.max_chars, cfg.overlap_chars)
        case "sentence":
            spans = pack(text, sentence_spans(text), cfg.max_chars, cfg.overlap_chars)
    trimmed = (trim(text, span) for span in spans)
    return [(start, end) for start, end in trimmed if end - start >= max(cfg.min_chars, 1)]


def chunk_id(doc_id: str, index: int) -> str:
    return f"{doc_id}#c{index}"


def chunk_document(doc: Document, cfg: ChunkingConfig) -> list[Chunk]:
    """The chunks of one document; they carry its title and metadata so retrieval can show and filter them."""
    return [
        Chunk(
            chunk_id=chunk_id(doc.doc_id, index),
            doc_id=doc.doc_id,
            text=doc.text[start:end],
            start=start,
            end=end,
            title=doc.title,
            metadata=doc.metadata,
        )
        for index, (start, end) in enumerate(chunk_spans(doc.text, cfg))
    ]
