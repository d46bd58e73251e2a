"""Citation cards as HTML: the cited span highlighted inside its passage, with what a reader checks first (the law
or document, the article, whether it is in force, the version date). Pure functions over the /v1/ask JSON, so they
are tested without a browser; every piece of text from the corpus or the model is escaped here."""

from __future__ import annotations

from html import escape
from typing import Any

CONTEXT_CHARS = 400  # passage text shown either side of the span; a statute article is usually whole within it
STATUS_WORDS = {  # the corpora's `status` values, glossed for a reader who does not read Chinese
    "现行有效": ("in force", "ok"),
    "已被修改": ("amended", "warn"),
    "历史版本": ("historical version", "old"),
    "已废止": ("repealed", "old"),
}
CARD_CSS = """
<style>
.dossier-card {border: 1px solid rgba(49,51,63,.2); border-radius: .5rem; padding: .75rem 1rem; margin: .25rem 0;
  background: #fff;}
.dossier-card.nearest {background: #f7f7f9; border-style: dashed;}
.dossier-card h4 {margin: 0 0 .35rem 0; padding: 0; font-size: 1rem;}
.dossier-badges {margin-bottom: .5rem;}
.dossier-badge {display: inline-block; font-size: .75rem; padding: .05rem .45rem; border-radius: .75rem;
  margin-right: .3rem; background: #eef0f4; color: #31333f;}
.dossier-badge.ok {background: #dff5e3; color: #1b5e20;}
.dossier-badge.warn {background: #fff3cd; color: #7a4f01;}
.dossier-badge.old {background: #fde2e1; color: #8a1c1c;}
.dossier-passage {white-space: pre-wrap; line-height: 1.6; font-size: .95rem;}
.dossier-passage mark {background: #ffe58f; padding: 0 .1rem; border-radius: .15rem;}
.dossier-foot {color: #6b6f7b; font-size: .75rem; margin-top: .5rem;}
.dossier-warn {color: #8a1c1c; font-size: .8rem; margin-top: .4rem;}
</style>
"""


def span_in_passage(text: str, passage_start: int, start: int, end: int, quote: str = "") -> tuple[int, int] | None:
    """The span [start, end) (offsets into the source document) as offsets into the passage `text`, which starts
    at `passage_start` in that document; else where `quote` occurs in it; None when neither fits."""
    local_start, local_end = start - passage_start, end - passage_start
    if 0 <= local_start < local_end <= len(text) and (not quote or text[local_start:local_end] == quote):
        return local_start, local_end
    found = text.find(quote) if quote else -1
    return (found, found + len(quote)) if found >= 0 else None


def highlighted_passage(text: str, span: tuple[int, int] | None, context_chars: int = CONTEXT_CHARS) -> str:
    """Escaped HTML of the passage with `span` in <mark>, cut to `context_chars` either side (an ellipsis marks a
    cut); with no span, the passage's first 2 * context_chars characters."""
    if span is None:
        cut = text[: 2 * context_chars]
        return escape(cut) + ("…" if len(cut) < len(text) else "")
    start, end = span
    left, right = max(0, start - context_chars), min(len(text), end + context_chars)
    return "".join((
        "…" if left > 0 else "",
        escape(text[left:start]),
        f"<mark>{escape(text[start:end])}</mark>",
        escape(text[end:right]),
        "…" if right < len(text) else "",
    ))


def badges(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, css class) of what the hit metadata says: article, status, version date, chapter, own document."""
    out: list[tuple[str, str]] = []
    if metadata.get("collection"):
        out.append(("your document", ""))
    if metadata.get("article_no"):
        out.append((str(metadata["article_no"]), ""))
    status = metadata.get("status")
    if status:
        gloss, css = STATUS_WORDS.get(str(status), ("", ""))
        out.append((f"{status} · {gloss}" if gloss else str(status), css))
    if metadata.get("version_date"):
        out.append((f"version {metadata['version_date']}", ""))
    if metadata.get("chapter"):
        out.append((str(metadata["chapter"]), ""))
    return out


def heading(hit: dict[str, Any]) -> str:
    """The law or document name: a hit's `law_name`, else its title, else its document id."""
    metadata = hit.get("metadata") or {}
    return str(metadata.get("law_name") or metadata.get("file_name") or hit.get("title") or hit["doc_id"])


def card_html(hit: dict[str, Any], span: tuple[int, int] | None, label: str, *, nearest: bool = False,
              warnings: list[str] | None = None) -> str:
    """One card: `label` (e.g. "[2]") and the heading, the badges, the passage, where it sits in its document."""
    badge_html = "".join(f'<span class="dossier-badge {css}">{escape(text)}</span>' for text, css in
                         badges(hit.get("metadata") or {}))
    warn_html = "".join(f'<div class="dossier-warn">⚠ {escape(w)}</div>' for w in warnings or [])
    where = f"{hit['doc_id']} · characters {hit['start']}–{hit['end']}"
    return (
        f'<div class="dossier-card{" nearest" if nearest else ""}" data-chunk="{escape(hit["chunk_id"])}">'
        f"<h4>{escape(label)} {escape(heading(hit))}</h4>"
        f'<div class="dossier-badges">{badge_html}</div>'
        f'<div class="dossier-passage">{highlighted_passage(hit["text"], span)}</div>'
        f"{warn_html}"
        f'<div class="dossier-foot">{escape(where)}</div></div>'
    )


def citation_card_html(citation: dict[str, Any], hits: list[dict[str, Any]],
                       unsupported: list[dict[str, Any]] | None = None) -> str:
    """The card of one citation of an answer: its passage is the hit with its chunk id (the API cites only
    retrieved chunks); a citation whose hit is missing shows its quote alone, still highlighted."""
    hit = next((h for h in hits if h["chunk_id"] == citation["chunk_id"]), None)
    if hit is None:
        hit = {"chunk_id": citation["chunk_id"], "doc_id": citation["doc_id"], "title": citation["title"],
               "text": citation["quote"], "start": citation["start"], "end": citation["end"], "metadata": {}}
    span = span_in_passage(hit["text"], hit["start"], citation["start"], citation["end"], citation["quote"])
    warnings = [f"not supported here: “{u['sentence']}” ({u['reason']})" for u in unsupported or []
                if u.get("marker") == citation["marker"]]
    return card_html(hit, span, f"[{citation['marker']}]", warnings=warnings)


def citation_label(citation: dict[str, Any], hits: list[dict[str, Any]]) -> str:
    """The button text of a marker: "[2] 中华人民共和国刑法 第二百三十二条" (the title says law and article)."""
    hit = next((h for h in hits if h["chunk_id"] == citation["chunk_id"]), None)
    name = (hit or {}).get("title") or citation["title"] or citation["doc_id"]
    return f"[{citation['marker']}] {name}"
