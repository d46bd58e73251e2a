"""One answer on screen. A cited answer and "the sources do not cover this" look different at a glance: the
first is the answer text with its source buttons, the second a warning box with the nearest passages under it.
Per-stage timings and the feedback buttons follow either."""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from ui import citations_view
from ui.client import DossierApiError, DossierClient

log = logging.getLogger(__name__)


def show_answer(client: DossierClient, domain: str, answer: dict[str, Any], key: str,
                history: list[dict[str, str]]) -> None:
    if answer["abstained"]:
        st.warning(f"**The sources do not cover this.** {answer['answer']}", icon="🔎")
        if answer.get("abstain_reason"):
            st.caption(answer["abstain_reason"])
        citations_view.show_nearest(answer)
    else:
        st.markdown(citations_view.marked_answer(answer["answer"]))
        if note := quoted_note(answer):
            st.caption(note)
        citations_view.show_sources(answer, key)
    if answer.get("disclaimer"):
        st.caption(answer["disclaimer"])
    show_timings(answer, key)
    rate(client, domain, answer, key, history)


def quoted_note(answer: dict[str, Any]) -> str | None:
    """For an answer quoted from a passage because the model only named it (rag/marker_quote.py), or a reply that
    is mostly the passages' own words (rag/paste.py): say so, since its citations check out either way."""
    trace = answer.get("trace") or {}
    if trace.get("quoted_for_reply") is not None:
        return ("An extract: the model named this passage without writing an answer, so this is the passage's "
                "sentence nearest your question.")
    citations = trace.get("citations") or {}
    if citations.get("pasted"):
        return (f"Quoted, not summarised: {float(citations.get('copied_share') or 0):.0%} of this reply is the "
                "cited passages' own text. Read it as the sources to check, not as an answer to your case.")
    return None


def timing_rows(trace: dict[str, Any]) -> list[dict[str, str]]:
    """The trace's per-stage milliseconds in the order the pipeline ran them (the JSON keeps it); a retriever's
    own stages (retrieve.bm25, ...) under their stage."""
    rows = []
    for name, ms in (trace.get("timings_ms") or {}).items():
        stage, _, sub = name.partition(".")
        rows.append({"stage": f"↳ {sub}" if sub else stage, "ms": f"{float(ms):,.1f}"})
    return rows


def show_timings(answer: dict[str, Any], key: str) -> None:
    rows = timing_rows(answer.get("trace") or {})
    if rows:
        with st.expander("⏱ Per-stage timings", key=f"timings-{key}"):
            st.table(rows, hide_index=True)


def rate(client: DossierClient, domain: str, answer: dict[str, Any], key: str, history: list[dict[str, str]]) -> None:
    """Thumbs up / down and a better answer, sent to /v1/feedback (they become training records)."""
    with st.container(horizontal=True, gap="small"):
        for rating, label in (("up", "👍"), ("down", "👎")):
            if st.button(label, key=f"{rating}-{key}", help=f"rate this answer {rating}"):
                send_feedback(client, domain, answer, history, rating=rating)
    with st.expander("Suggest a better answer", key=f"better-box-{key}"):
        better = st.text_area("Better answer", key=f"better-{key}", label_visibility="collapsed")
        if st.button("Send", key=f"send-{key}") and better.strip():
            send_feedback(client, domain, answer, history, preferred=better.strip())


def send_feedback(client: DossierClient, domain: str, answer: dict[str, Any], history: list[dict[str, str]],
                  **kind: str) -> None:
    try:
        client.feedback(domain, answer["question"], answer["answer"], history=history, **kind)
        st.toast("Thank you — feedback saved.")
    except DossierApiError as err:
        log.warning("feedback not saved: %s", err)
        st.error(f"Feedback not saved: {err.reason}")
