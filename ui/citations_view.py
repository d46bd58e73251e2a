"""The sources under an answer: one button per `[n]` marker, each opening its citation card (a popover: the card
appears where the reader clicked, and the answer stays in view); for an abstention, the nearest passages, marked
as such. The HTML comes from `ui.citation_html`."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from ui.citation_html import CARD_CSS, card_html, citation_card_html, citation_label

NEAREST_SHOWN = 3
MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")  # the API writes markers back as [n] / [n,m]


def inject_css() -> None:
    st.html(CARD_CSS)


def marked_answer(text: str) -> str:
    """The answer's markdown with each [n] / [n,m] as a coloured chip, so the reader sees which sentence each
    source button under it belongs to (brackets escaped: markdown would read `[1]` as a link reference)."""
    return MARKER.sub(lambda m: rf":blue-background[\[{m.group(1)}\]]", text)


def show_sources(answer: dict[str, Any], key: str) -> None:
    """A row of popover buttons, "[1] 中华人民共和国刑法 第二百三十二条", each holding its citation card."""
    citations = answer["citations"]
    if not citations:
        st.caption("⚠ This answer cites no passage: check it against the sources before relying on it.")
        return
    st.caption("Sources — open a marker to read the cited words in their passage")
    with st.container(horizontal=True, gap="small", key=f"sources-{key}"):
        for citation in citations:
            with st.popover(citation_label(citation, answer["hits"]), key=f"cite-{key}-{citation['marker']}"):
                st.html(citation_card_html(citation, answer["hits"], answer.get("unsupported")))
    uncited = (answer["trace"].get("citations") or {}).get("uncited_sentences") or []
    if uncited:
        st.caption(f"{len(uncited)} sentence(s) without a citation — check them against the sources.")


def show_nearest(answer: dict[str, Any]) -> None:
    """The passages closest to the question, each labelled as not an answer."""
    hits = answer["hits"][:NEAREST_SHOWN]
    if not hits:
        return
    st.caption("Nearest passages — shown for orientation; they do not answer the question")
    for i, hit in enumerate(hits, 1):
        st.html(card_html(hit, None, f"nearest {i} ·", nearest=True))
