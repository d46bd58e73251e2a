"""How an `Answer` is shown: JSON for the API / `--json`, and plain text for clients that only read a message
(the OpenAI-compatible route, the CLI chat)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from core.records import Answer, Hit

NEAREST_SHOWN = 3
NEAREST_CHARS = 160
UNSUPPORTED_HEADING = "注意：以下句子未得到所引条文的支持（请核对原文）："
# an answer quoted for a reply of markers alone (rag/marker_quote.py) says so: the words are the source's, the choice
# of sentence is the system's, not the model's answer
QUOTED_NOTE = "说明：模型只指出了出处而没有写出答案，以上是该段资料中与问题最相关的一句原文。"
# a paste passes the citation check (rag/paste.py): the reader should know it is the sources' text, not an answer
PASTED_NOTE = ("说明：以上回答的{share:.0%}是所引资料的原文摘录，并非针对您具体情况的归纳，"
               "请把它当作需要核对的依据来读。")


def hit_json(hit: Hit) -> dict[str, Any]:
    chunk = hit.chunk
    return {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "text": chunk.text,
        "start": chunk.start,
        "end": chunk.end,
        "score": float(hit.score),
        "retriever": hit.retriever,
        "stage_scores": {k: float(v) for k, v in hit.stage_scores.items()},
        "metadata": {k: v for k, v in chunk.metadata.items() if isinstance(v, str | int | float | bool) or v is None},
    }


def evidence_json(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """The passages of a prompt as the stream's first event: each with `n`, the marker that cites it."""
    return [{"n": n, **hit_json(hit)} for n, hit in enumerate(hits, 1)]


def unsupported_sentences(answer: Answer) -> list[dict[str, Any]]:
    """The (sentence, marker, reason) rows of cited sentences their passage does not support (rag.support)."""
    citations = answer.trace.get("citations") or {}
    return list(citations.get("unsupported_sentences", []))


def answer_json(answer: Answer, domain: str) -> dict[str, Any]:
    return {
        "domain": domain,
        "question": answer.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "abstain_reason": answer.abstain_reason,
        "disclaimer": answer.disclaimer,
        "citations": [asdict(c) for c in answer.citations],
        "unsupported": unsupported_sentences(answer),
        "hits": [hit_json(h) for h in answer.hits],
        "trace": dict(answer.trace),
    }


def nearest_passages_text(hits: Sequence[Hit], n: int = NEAREST_SHOWN) -> str:
    lines = []
    for i, hit in enumerate(hits[:n], 1):
        text = hit.chunk.text if len(hit.chunk.text) <= NEAREST_CHARS else hit.chunk.text[:NEAREST_CHARS] + "…"
        lines.append(f"[{i}] {hit.chunk.title}: {text}" if hit.chunk.title else f"[{i}] {text}")
    return "\n".join(lines)


def answer_epilogue(answer: Answer) -> str:
    """What follows the answer text for a reader of plain text: that it is a quote or a paste where it is one, the
    cited sentences their passages do not support, the nearest passages when the service abstained, and the domain
    disclaimer."""
    citations = answer.trace.get("citations") or {}
    if answer.trace.get("quoted_for_reply") is not None:
        parts = [QUOTED_NOTE]
    elif citations.get("pasted"):
        parts = [PASTED_NOTE.format(share=float(citations.get("copied_share") or 0))]
    else:
        parts = []
    if flagged := unsupported_sentences(answer):
        lines = [f"- {row['sentence']} [{row['marker']}]" for row in flagged]
        parts.append(UNSUPPORTED_HEADING + "\n" + "\n".join(lines))
    if answer.abstained and answer.hits:
        parts.append(nearest_passages_text(answer.hits))
    if answer.disclaimer:
        parts.append(answer.disclaimer)
    return "".join(f"\n\n{p}" for p in parts)


def sources_text(answer: Answer) -> str:
    return "\n".join(f"[{c.marker}] {c.title} ({c.doc_id} {c.start}-{c.end}): {c.quote}" for c in answer.citations)
