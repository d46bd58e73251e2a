"""One browser session's state: who it is to the server (its owner id), its API client, and the conversation on
screen. Streamlit keeps `st.session_state` per browser tab; nothing here is shared between sessions."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import streamlit as st

from ui.client import OWNER_ID, DossierClient

log = logging.getLogger(__name__)
OWNER_COOKIE = "dossier_owner"
MAX_HISTORY_MESSAGES = 20  # the API's limit on `history`


def owner_id() -> str:
    """This browser's owner id. A session cookie (no expiry: it ends with the browser) keeps it across reloads,
    so a reload does not hide the conversations and documents; a new browser, or a second one, is a new owner."""
    state = st.session_state
    if "owner" not in state:
        cookie = st.context.cookies.get(OWNER_COOKIE, "")
        valid = isinstance(cookie, str) and OWNER_ID.fullmatch(cookie)  # AppTest's context has no real cookies
        state.owner = cookie if valid else secrets.token_urlsafe(18)  # 24 characters of [A-Za-z0-9_-]
        state.owner_cookie_set = cookie == state.owner
    if not state.owner_cookie_set:
        # the id is [A-Za-z0-9_-] only (checked above or generated so), safe inside the script
        st.html(f"<script>document.cookie = '{OWNER_COOKIE}={state.owner}; path=/; SameSite=Strict';</script>",
                unsafe_allow_javascript=True)
        state.owner_cookie_set = True
    return state.owner


def client() -> DossierClient:
    """The session's client: its own, since it carries this session's owner header."""
    if "client" not in st.session_state:
        st.session_state.client = DossierClient(owner=owner_id())
        log.info("session %s… talks to %s", st.session_state.owner[:4], st.session_state.client.base_url)
    return st.session_state.client


def new_conversation(domain: str) -> dict[str, Any]:
    """A conversation not yet stored: the server gets it with the first question."""
    return {"id": None, "domain": domain, "title": "", "turns": []}


def current(domain: str) -> dict[str, Any]:
    """The conversation on screen for `domain`: {"id", "domain", "title", "turns": [{"question", "answer"}]}."""
    return st.session_state.setdefault("current", {}).setdefault(domain, new_conversation(domain))


def show(conversation: dict[str, Any]) -> None:
    st.session_state.setdefault("current", {})[conversation["domain"]] = conversation


def history_for_api(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The turns as chat messages, the latest MAX_HISTORY_MESSAGES of them."""
    messages = []
    for turn in turns:
        messages += [{"role": "user", "content": turn["question"]},
                     {"role": "assistant", "content": turn["answer"]["answer"]}]
    return messages[-MAX_HISTORY_MESSAGES:]
