"""Dossier chat: pick a domain, ask, watch the answer stream in, open each citation's quoted passage, see plainly
when the corpus does not cover a question, and rate answers (the ratings become training records).

Run: DOSSIER_API_URL=http://127.0.0.1:8000 streamlit run ui/app.py
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui.client import DossierApiError, DossierClient

NEAREST_SHOWN = 3


@st.cache_resource
def client() -> DossierClient:
    return DossierClient()


def conversation(domain: str) -> list[dict[str, Any]]:
    """Messages of this domain's conversation: {"role", "content", "answer": the API's answer or None}."""
    return st.session_state.setdefault("conversations", {}).setdefault(domain, [])


def history_for_api(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages][-20:]


def show_citations(answer: dict[str, Any]) -> None:
    for c in answer["citations"]:
        with st.expander(f"[{c['marker']}] {c['title'] or c['doc_id']}"):
            st.markdown("> " + c["quote"].replace("\n", "\n> "))
            st.caption(f"{c['doc_id']} · characters {c['start']}–{c['end']}")
    uncited = (answer["trace"].get("citations") or {}).get("uncited_sentences") or []
    if uncited:
        st.caption(f"{len(uncited)} sentence(s) without a citation — check them against the sources.")


def show_abstention(answer: dict[str, Any]) -> None:
    st.warning(answer["answer"])
    st.caption(answer["abstain_reason"])
    for i, hit in enumerate(answer["hits"][:NEAREST_SHOWN], 1):
        with st.expander(f"nearest passage {i}: {hit['title'] or hit['doc_id']}"):
            st.write(hit["text"])


def rate(domain: str, index: int, answer: dict[str, Any], history: list[dict[str, str]]) -> None:
    """Thumbs up / down and a better answer, sent to /v1/feedback."""
    key = f"{domain}-{index}"
    up, down, _ = st.columns([1, 1, 8])
    for column, rating, label in ((up, "up", "👍"), (down, "down", "👎")):
        if column.button(label, key=f"{rating}-{key}"):
            send_feedback(domain, answer, history, rating=rating)
    with st.expander("Suggest a better answer"):
        better = st.text_area("Better answer", key=f"better-{key}", label_visibility="collapsed")
        if st.button("Send", key=f"send-{key}") and better.strip():
            send_feedback(domain, answer, history, preferred=better.strip())


def send_feedback(domain: str, answer: dict[str, Any], history: list[dict[str, str]], **kind: str) -> None:
    try:
        client().feedback(domain, answer["question"], answer["answer"], history=history, **kind)
        st.toast("Thank you — feedback saved.")
    except DossierApiError as err:
        st.error(f"Feedback not saved: {err}")


def show_answer(domain: str, index: int, answer: dict[str, Any], history: list[dict[str, str]]) -> None:
    if answer["abstained"]:
        show_abstention(answer)
    else:
        show_citations(answer)
    if answer["disclaimer"]:
        st.caption(answer["disclaimer"])
    rate(domain, index, answer, history)


def ask(domain: str, question: str, k: int) -> None:
    messages = conversation(domain)
    history = history_for_api(messages)
    messages.append({"role": "user", "content": question, "answer": None})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        placeholder, text, answer = st.empty(), "", None
        try:
            for event in client().ask_stream(domain, question, history, k=k):
                if "answer" in event:
                    answer = event["answer"]
                else:
                    text += event["delta"]
                    placeholder.markdown(text + "▌")
        except DossierApiError as err:
            placeholder.error(str(err))
            return
        if answer is None:
            placeholder.error("the answer stream ended early")
            return
        placeholder.markdown(answer["answer"] if not answer["abstained"] else "")
        messages.append({"role": "assistant", "content": answer["answer"], "answer": answer})
        show_answer(domain, len(messages) - 1, answer, history)


def sidebar(domains: list[dict[str, Any]]) -> tuple[str, int]:
    with st.sidebar:
        st.title("Dossier")
        names = [d["name"] for d in domains]
        labels = {d["name"]: d["display_name"] for d in domains}
        domain = st.selectbox("Domain", names, format_func=labels.get)
        info = next(d for d in domains if d["name"] == domain)
        st.caption(info["description"])
        k = st.slider("Passages to retrieve", 1, 20, 5)
        if st.button("New conversation"):
            conversation(domain).clear()
        st.caption(f"API: {client().base_url}")
    return domain, k


def main() -> None:
    st.set_page_config(page_title="Dossier", page_icon="📚")
    try:
        domains = client().domains()
    except DossierApiError as err:
        st.error(f"The Dossier API is not available: {err}")
        return
    if not domains:
        st.error("The API serves no domain.")
        return
    domain, k = sidebar(domains)
    messages = conversation(domain)
    for i, message in enumerate(messages):
        with st.chat_message(message["role"]):
            if message["answer"] is None or not message["answer"]["abstained"]:
                st.markdown(message["content"])
            if message["answer"] is not None:
                show_answer(domain, i, message["answer"], history_for_api(messages[:i - 1]))
    if question := st.chat_input("Ask a question"):
        ask(domain, question, k)


if __name__ == "__main__":  # streamlit runs the script as __main__
    main()
