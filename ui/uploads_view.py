"""The reader's own documents: files uploaded into a private collection of the domain (the server checks, reads,
chunks and indexes them), each one's progress, the files it refused with the reason, deletion. A refused file
costs nothing else: the others of the same upload go on, and the conversation is untouched."""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from ui.client import DossierApiError, DossierClient
from ui.sidebar import USE_COLLECTION

log = logging.getLogger(__name__)
ACCEPTED = "PDF, DOCX, TXT, Markdown or HTML"
POLL_S = 1.5  # how often the panel asks for the progress of files still being indexed
PENDING = ("queued", "indexing")
STATUS_ICON = {"queued": "⏳", "indexing": "⚙", "ready": "✅", "failed": "❌"}


def supported() -> bool:
    return st.session_state.get("collections_supported", True)


def uploader_key() -> str:
    # a new key empties the uploader once its files are sent, so a rerun does not send them again
    return f"uploader-{st.session_state.get('uploads_sent', 0)}"


def send(client: DossierClient, domain: str, files: list[Any]) -> list[tuple[str, str | None]]:
    """Upload each file; (name, None) when the server took it, (name, reason) when it refused it."""
    outcome: list[tuple[str, str | None]] = []
    bar = st.progress(0.0, text="Uploading…")
    for i, f in enumerate(files):
        bar.progress(i / len(files), text=f"Uploading {f.name} ({i + 1} of {len(files)})…")
        try:
            client.upload(domain, f.name, f.getvalue(), f.type)
            outcome.append((f.name, None))
        except DossierApiError as err:
            log.info("upload of %s refused: %s", f.name, err)
            outcome.append((f.name, refusal(err)))
    bar.empty()
    return outcome


def refusal(err: DossierApiError) -> str:
    """The reason a reader acts on: what the server said, with the kind of refusal in plain words."""
    kinds = {413: "too large", 415: "not a supported type", 422: "empty or unreadable"}
    kind = kinds.get(err.status)
    return f"{kind} — {err.reason}" if kind else err.reason


def show_outcome(outcome: list[tuple[str, str | None]]) -> None:
    taken = [name for name, reason in outcome if reason is None]
    if taken:
        st.success(f"Uploaded: {', '.join(taken)} — indexing shows below")
    for name, reason in outcome:
        if reason is not None:
            st.error(f"**{name}** was not added: {reason}")


def file_row(client: DossierClient, domain: str, f: dict[str, Any]) -> None:
    status = f["status"]
    chunks = f" · {f['chunks']} passage{'s' if f['chunks'] != 1 else ''}" if status == "ready" else ""
    name, delete = st.columns([6, 1], gap="small", vertical_alignment="center")
    name.markdown(f"{STATUS_ICON.get(status, '')} **{f['name']}** · {status}{chunks}")
    if delete.button("🗑", key=f"delete-file-{f['file_id']}", help="remove this document from your collection",
                     type="tertiary"):
        try:
            client.delete_file(domain, f["file_id"])
        except DossierApiError as err:
            st.error(f"Not removed: {err.reason}")
        st.rerun()
    if status in PENDING:
        st.progress(float(f.get("progress") or 0.0), text="queued" if status == "queued" else "indexing…")
    if status == "failed":
        st.error(f"**{f['name']}** could not be read: {f.get('error') or 'no reason given'}")
    if f.get("note"):
        st.caption(f["note"])


def collection_files(client: DossierClient, domain: str) -> list[dict[str, Any]] | None:
    try:
        return client.collection(domain)["files"]
    except DossierApiError as err:
        if err.status in (404, 405):
            st.session_state.collections_supported = False
        st.caption(f"Your documents are unavailable: {err.reason}")
        return None


def collection_panel(client: DossierClient, domain: str) -> None:
    """The collection's files; while one is still being indexed the panel re-draws itself every POLL_S seconds
    (a fragment: the chat above is not re-run), and the whole page re-runs once all are done."""
    busy = st.session_state.get(f"collection-busy-{domain}", False)

    @st.fragment(run_every=POLL_S if busy else None)
    def panel() -> None:
        files = collection_files(client, domain)
        if files is None:
            return
        if not files:
            st.caption("No documents yet.")
        for f in files:
            file_row(client, domain, f)
        still = any(f["status"] in PENDING for f in files)
        st.session_state[f"collection-busy-{domain}"] = still
        if still != busy:
            st.rerun()  # start or stop polling; the scope is the app, so the toggle and sidebar see the change

    panel()


def documents(client: DossierClient, domain: str) -> None:
    with st.expander("📎 Your documents", expanded=True):
        if not supported():
            st.caption("This server does not take uploads.")
            return
        st.caption(f"Private to you: {ACCEPTED}. Answers use them when “Search my documents too” is on.")
        files = st.file_uploader("Add documents", accept_multiple_files=True, key=uploader_key(),
                                 label_visibility="collapsed")
        if files:
            outcome = send(client, domain, files)
            st.session_state.upload_outcome = outcome
            st.session_state.uploads_sent = st.session_state.get("uploads_sent", 0) + 1
            if any(reason is None for _, reason in outcome):
                st.session_state.collection_on = True  # applied before the toggle is drawn (app.py)
                st.session_state[f"collection-busy-{domain}"] = True
            st.rerun()
        show_outcome(st.session_state.get("upload_outcome", []))
        collection_panel(client, domain)


def apply_collection_on() -> None:
    """Turn "Search my documents too" on after a first upload; a widget's value can only be set before it is drawn."""
    if st.session_state.pop("collection_on", False):
        st.session_state[USE_COLLECTION] = True
