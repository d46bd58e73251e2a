"""The sidebar's settings: the domain, how many passages to retrieve, the metadata filters the corpora carry
(retrieval/filters.py matches them against hit metadata), whether the reader's own documents are searched too,
and which generator answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

IN_FORCE = "现行有效"  # the corpora's `status` of a statute in force (legal, medical and finance alike)
USE_COLLECTION = "use_collection"  # the toggle's key: uploads_view turns it on after a first upload


@dataclass(frozen=True, slots=True)
class Settings:
    domain: str
    k: int
    filters: dict[str, str] = field(default_factory=dict)
    collection: bool = False  # answer over the corpus and the reader's own collection


def pick_domain(domains: list[dict[str, Any]]) -> dict[str, Any]:
    labels = {d["name"]: d["display_name"] for d in domains}
    name = st.selectbox("Domain", list(labels), format_func=labels.get, key="domain")
    info = next(d for d in domains if d["name"] == name)
    st.caption(info["description"])
    return info


def filters(in_force: bool, law: str) -> dict[str, str]:
    """The /v1/ask `filters`: every key must match the hit's metadata (AND)."""
    out = {"status": IN_FORCE} if in_force else {}
    if law.strip():
        out["law_name"] = law.strip()
    return out


def answer_settings(info: dict[str, Any], collections_ok: bool) -> Settings:
    with st.expander("⚙ Answer settings", expanded=True):
        k = st.slider("Passages to retrieve", 1, 20, 5, key="k",
                      help="how many passages retrieval hands to the generator (and to the citation check)")
        in_force = st.checkbox(f"Only statutes in force ({IN_FORCE})", key="in_force",
                               help="leave out articles of amended, historical and repealed versions")
        law = st.text_input("Only this law", key="law", placeholder="中华人民共和国刑法",
                            help="the law's full name, as the cards show it")
        collection = st.toggle("Search my documents too", key=USE_COLLECTION, disabled=not collections_ok,
                               help="answer over the domain's corpus and the documents you uploaded")
        generator = info.get("generator") or "still loading"
        st.caption(f"Generator: `{generator}` (the one this server runs for {info['name']})")
    return Settings(info["name"], k, filters(in_force, law), collection and collections_ok)
