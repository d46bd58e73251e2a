"""The conversation on screen: its turns, and a new question asked with the sidebar's settings, its answer
streamed in as it is generated and then shown with its sources. The server appends the turn to the stored
conversation itself (`conversation_id`), so the page only keeps what it shows."""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from ui import conversations_view, session
from ui.answer_view import show_answer
from ui.client import DossierApiError, DossierClient
from ui.sidebar import Settings

log = logging.getLogger(__name__)
CURSOR = "▌"
EVIDENCE_SNIPPET = 24  # characters shown for a passage without a title


def turn_key(conversation: dict[str, Any], index: int) -> str:
    return f"{conversation['id'] or 'local'}-{index}"


def show_turns(client: DossierClient, conversation: dict[str, Any]) -> None:
    for i, turn in enumerate(conversation["turns"]):
        with st.chat_message("user"):
            st.markdown(turn["question"])
        with st.chat_message("assistant"):
            history = session.history_for_api(conversation["turns"][:i])
            show_answer(client, conversation["domain"], turn["answer"], turn_key(conversation, i), history)


def evidence_line(passages: list[dict[str, Any]]) -> str:
    """"Reading 3 passages: [1] 中华人民共和国刑法 第二百六十四条 · [2] …" while the answer is on its way."""
    names = " · ".join(f"[{p['n']}] {p['title'] or p['text'][:EVIDENCE_SNIPPET] + '…'}" for p in passages)
    return f"Reading {len(passages)} passage{'s' if len(passages) != 1 else ''}: {names}"


def stream_answer(client: DossierClient, settings: Settings, question: str,
                  conversation: dict[str, Any]) -> dict[str, Any] | None:
    """The final answer JSON, the text drawn as it streams; None (and the error shown) when it failed. The
    passages come first, shown while the model reads them; the answer's own sources replace them."""
    evidence, placeholder, text = st.empty(), st.empty(), ""
    try:
        events = client.ask_stream(settings.domain, question, session.history_for_api(conversation["turns"]),
                                   k=settings.k, filters=settings.filters, conversation_id=conversation["id"],
                                   collection=settings.collection)
        for event in events:
            if "answer" in event:
                evidence.empty()
                placeholder.empty()
                return event["answer"]
            if "evidence" in event:
                evidence.caption(evidence_line(event["evidence"]))
                placeholder.markdown(CURSOR)
                continue
            text += event.get("delta", "")
            placeholder.markdown(text + CURSOR)
    except DossierApiError as err:
        log.warning("ask failed: %s", err)
        placeholder.error(f"No answer: {err.reason}")
        return None
    placeholder.error("The answer stream ended early; ask again.")
    return None


def ask(client: DossierClient, settings: Settings, question: str) -> None:
    conversation = session.current(settings.domain)
    if conversation["id"] is None:
        conversation["id"] = conversations_view.start(client, settings.domain, question)
        conversation["title"] = question[: conversations_view.TITLE_CHARS]
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        answer = stream_answer(client, settings, question, conversation)
        if answer is None:
            return
        history = session.history_for_api(conversation["turns"])
        conversation["turns"].append({"question": question, "answer": answer})
        show_answer(client, settings.domain, answer, turn_key(conversation, len(conversation["turns"]) - 1),
                    history)
