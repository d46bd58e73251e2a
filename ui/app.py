"""Dossier chat: pick a domain, ask, watch the answer stream in, open each `[n]` to read the cited words in their
passage, see plainly when the sources do not cover a question, add your own documents, come back to a stored
conversation, export it with its sources, and rate answers (the ratings become training records).

Run: DOSSIER_API_URL=http://127.0.0.1:8000 streamlit run ui/app.py
The page talks to the REST API only (ui/client.py); each module here draws one part of it.
"""

from __future__ import annotations

import logging

import streamlit as st

from ui import chat_view, citations_view, conversations_view, session, sidebar, uploads_view
from ui.client import DossierApiError

log = logging.getLogger(__name__)


def main() -> None:
    st.set_page_config(page_title="Dossier", page_icon="📚", layout="wide")
    client = session.client()
    try:
        domains = client.domains()
    except DossierApiError as err:
        st.error(f"The Dossier API is not available: {err}")
        return
    if not domains:
        st.error("The API serves no domain.")
        return
    citations_view.inject_css()
    uploads_view.apply_collection_on()
    with st.sidebar:
        st.title("📚 Dossier")
        info = sidebar.pick_domain(domains)
        listing = st.container()  # filled last, so it counts the turn this run may add
        settings = sidebar.answer_settings(info, uploads_view.supported())
        uploads_view.documents(client, info["name"])
        st.caption(f"API: {client.base_url}")
    conversation = session.current(settings.domain)
    st.subheader(conversation["title"] or info["display_name"])
    conversations_view.export_buttons(client, conversation)
    chat_view.show_turns(client, conversation)
    if question := st.chat_input("Ask a question about the sources"):
        chat_view.ask(client, settings, question)
    with listing:
        conversations_view.sidebar_list(client, settings.domain)


if __name__ == "__main__":  # streamlit runs the script as __main__
    main()
