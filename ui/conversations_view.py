"""Conversations the server stores for this owner: listed in the sidebar (newest first), reopened with their
answers and sources, deleted, and exported with their sources as Markdown or DOCX. Buttons act in callbacks, which
Streamlit runs before the page is drawn, so the page shows the conversation chosen by the click that drew it."""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from ui import session
from ui.client import DossierApiError, DossierClient

log = logging.getLogger(__name__)
TITLE_CHARS = 60
EXPORTS = (("md", "Markdown", "text/markdown"),
           ("docx", "DOCX", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"))


def supported() -> bool:
    """False once the server said it has no /v1/conversations (an older server): the chat then stays local."""
    return st.session_state.get("conversations_supported", True)


def start(client: DossierClient, domain: str, question: str) -> str | None:
    """The stored conversation a first question opens; None where the server keeps none."""
    if not supported():
        return None
    try:
        created = client.create_conversation(domain, title=question[:TITLE_CHARS])
    except DossierApiError as err:
        if err.status in (404, 405):
            st.session_state.conversations_supported = False
        log.warning("conversation not stored: %s", err)
        return None
    return created["id"]


def as_shown(stored: dict[str, Any]) -> dict[str, Any]:
    """The server's conversation as the page keeps it (each turn's answer is the full /v1/ask JSON)."""
    turns = [{"question": t["question"], "answer": t["answer"]} for t in stored.get("turns", [])]
    return {"id": stored["id"], "domain": stored["domain"], "title": stored.get("title") or "", "turns": turns}


def _open(client: DossierClient, conversation_id: str) -> None:
    try:
        session.show(as_shown(client.conversation(conversation_id)))
    except DossierApiError as err:
        st.session_state.conversation_error = f"Could not open the conversation: {err.reason}"


def _delete(client: DossierClient, conversation: dict[str, Any]) -> None:
    try:
        client.delete_conversation(conversation["id"])
    except DossierApiError as err:
        st.session_state.conversation_error = f"Could not delete the conversation: {err.reason}"
        return
    if session.current(conversation["domain"])["id"] == conversation["id"]:
        session.show(session.new_conversation(conversation["domain"]))


def sidebar_list(client: DossierClient, domain: str) -> None:
    st.subheader("Conversations")
    st.button("➕ New conversation", key="new-conversation", use_container_width=True,
              on_click=lambda: session.show(session.new_conversation(domain)))
    if error := st.session_state.pop("conversation_error", None):
        st.error(error)
    if not supported():
        st.caption("This server does not store conversations: this one lasts as long as the page.")
        return
    try:
        listed = [c for c in client.conversations() if c["domain"] == domain]
    except DossierApiError as err:
        if err.status == 404:
            st.session_state.conversations_supported = False
        st.caption(f"Conversations unavailable: {err.reason}")
        return
    if not listed:
        st.caption("No stored conversation yet: ask a question to start one.")
    shown_id = session.current(domain)["id"]
    for conv in sorted(listed, key=lambda c: c.get("updated") or "", reverse=True):
        title, delete = st.columns([6, 1], gap="small", vertical_alignment="center")
        shown = conv["id"] == shown_id
        label = f"{'▸ ' if shown else ''}{conv.get('title') or 'Untitled'} ({conv.get('turns', 0)})"
        title.button(label, key=f"open-{conv['id']}", type="secondary" if shown else "tertiary",
                     help="reopen this conversation", on_click=_open, args=(client, conv["id"]), width="stretch")
        delete.button("🗑", key=f"delete-{conv['id']}", help="delete this conversation for good", type="tertiary",
                      on_click=_delete, args=(client, conv))


def export_buttons(client: DossierClient, conversation: dict[str, Any]) -> None:
    """Download buttons for the stored conversation; the file is fetched when a button is clicked."""
    if not conversation["id"] or not conversation["turns"]:
        return
    stem = f"dossier-{conversation['domain']}-{conversation['id'][:8]}"
    with st.container(horizontal=True, gap="small", key="exports"):
        for fmt, label, mime in EXPORTS:
            st.download_button(f"⬇ Export {label}", data=_exporter(client, conversation["id"], fmt),
                               file_name=f"{stem}.{fmt}", mime=mime, key=f"export-{fmt}", on_click="ignore")


def _exporter(client: DossierClient, conversation_id: str, fmt: str) -> Any:
    def fetch() -> bytes:
        return client.export_conversation(conversation_id, fmt)

    return fetch
