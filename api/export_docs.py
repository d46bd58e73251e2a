"""A conversation as a file to keep or send on: Markdown or Word (.docx). Each turn gives the question, the answer,
the domain's disclaimer, and its sources: every citation numbered as in the answer, with the passage's title, the
span it quotes, and the whole passage it was taken from (the retrieved hit), so a reader checks a claim without
the service."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api.conversations import Conversation, Turn

# XML 1.0 refuses these characters (python-docx raises on them); a model's output or a pasted question may hold one.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class Source:
    marker: int
    title: str
    quote: str
    passage: str


def sources(answer: dict[str, Any]) -> list[Source]:
    """The citations of one /v1/ask response, each with the text of the hit it points into."""
    passages = {hit.get("chunk_id"): hit.get("text", "") for hit in answer.get("hits", [])}
    return [Source(int(c.get("marker", 0)), c.get("title") or c.get("doc_id", ""), c.get("quote", ""),
                   passages.get(c.get("chunk_id"), "")) for c in answer.get("citations", [])]


def markdown_export(conversation: Conversation, turns: Sequence[Turn]) -> str:
    lines = [f"# {conversation.title or 'Conversation'}", "",
             f"Domain: {conversation.domain} · started {conversation.created} · {len(turns)} questions", ""]
    for i, turn in enumerate(turns, 1):
        answer = turn.answer
        lines += [f"## {i}. {_one_line(turn.question)}", "", answer.get("answer", ""), ""]
        if answer.get("disclaimer"):
            lines += [f"*{answer['disclaimer']}*", ""]
        cited = sources(answer)
        lines += ["### Sources", ""] if cited else ["*No sources cited.*", ""]
        for source in cited:
            lines += [f"[{source.marker}] **{source.title}**: “{source.quote}”", ""]
            lines += [_quoted(source.passage), ""] if source.passage else []
    return "\n".join(lines).rstrip() + "\n"


def docx_export(conversation: Conversation, turns: Sequence[Turn]) -> bytes:
    import docx  # python-docx: only an export pays for importing it

    document = docx.Document()
    document.add_heading(_xml(conversation.title or "Conversation"), level=0)
    document.add_paragraph(_xml(f"Domain: {conversation.domain} · started {conversation.created} · "
                                f"{len(turns)} questions"))
    for i, turn in enumerate(turns, 1):
        answer = turn.answer
        document.add_heading(_xml(f"{i}. {_one_line(turn.question)}"), level=1)
        document.add_paragraph(_xml(answer.get("answer", "")))
        if answer.get("disclaimer"):
            document.add_paragraph().add_run(_xml(answer["disclaimer"])).italic = True
        cited = sources(answer)
        if not cited:
            document.add_paragraph().add_run("No sources cited.").italic = True
            continue
        document.add_heading("Sources", level=2)
        for source in cited:
            line = document.add_paragraph(f"[{source.marker}] ")
            line.add_run(_xml(source.title)).bold = True
            line.add_run(_xml(f": “{source.quote}”"))
            if source.passage:
                document.add_paragraph(_xml(source.passage), style="Quote")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)
