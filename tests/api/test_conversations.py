"""Conversations kept by the server, over a real uvicorn server on 127.0.0.1 and the real app: real retrieval
(MiniLM + jieba BM25 on the Criminal Law slice), a real SQLite store, real Markdown and .docx exports read back
with python-docx. The generator always cites [1] (tests/api/conftest.py), so every answer has a source to export."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from api_support import needs_minilm
from live_server import LiveServer

from api import create_app
from api.conversations import ConversationStore
from api.keys import KeyStore, Scopes

pytestmark = needs_minilm

QUESTION = "故意杀人罪判几年？"
MURDER_ARTICLE = "第二百三十二条"


def user(name: str) -> dict[str, str]:
    return {"X-Dossier-User": f"{name}-session-0001"}


@pytest.fixture(scope="module")
def server(citing_pipeline, tmp_path_factory):
    store = ConversationStore(tmp_path_factory.mktemp("conversations") / "conversations.sqlite")
    app = create_app(["legal"], build=lambda _: citing_pipeline, api_keys=[], conversations=store)
    with LiveServer(app) as live:
        yield live


def create(url: str, headers: dict[str, str], **body: str) -> dict:
    r = httpx.post(f"{url}/v1/conversations", json={"domain": "legal", **body}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def ask(url: str, headers: dict[str, str], conversation_id: str, question: str = QUESTION) -> dict:
    payload = {"domain": "legal", "question": question, "conversation_id": conversation_id}
    r = httpx.post(f"{url}/v1/ask", json=payload, headers=headers, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def ask_streamed(url: str, headers: dict[str, str], conversation_id: str, question: str) -> dict:
    payload = {"domain": "legal", "question": question, "conversation_id": conversation_id, "stream": True}
    with httpx.stream("POST", f"{url}/v1/ask", json=payload, headers=headers, timeout=120) as r:
        assert r.status_code == 200
        events = [line[5:].strip() for line in r.iter_lines() if line.startswith("data:")]
    assert events[-1] == "[DONE]"
    return json.loads(events[-2])["answer"]


def test_create_list_get_delete(server):
    url, alice = server.url, user("alice")
    first = create(url, alice)
    assert set(first) == {"id", "domain", "title", "created", "updated"}
    assert first["domain"] == "legal" and first["title"] == ""
    second = create(url, alice, title="Contract review")
    listed = httpx.get(f"{url}/v1/conversations", headers=alice).json()["conversations"]
    assert [c["id"] for c in listed][:2] == [second["id"], first["id"]]  # newest first
    assert listed[0]["title"] == "Contract review" and listed[0]["turns"] == 0
    got = httpx.get(f"{url}/v1/conversations/{first['id']}", headers=alice).json()
    assert got["id"] == first["id"] and got["turns"] == []
    assert httpx.delete(f"{url}/v1/conversations/{first['id']}", headers=alice).status_code == 204
    r = httpx.get(f"{url}/v1/conversations/{first['id']}", headers=alice)
    assert r.status_code == 404 and r.json()["error"]["reason"]
    assert httpx.delete(f"{url}/v1/conversations/{first['id']}", headers=alice).status_code == 404
    remaining = [c["id"] for c in httpx.get(f"{url}/v1/conversations", headers=alice).json()["conversations"]]
    assert first["id"] not in remaining and second["id"] in remaining


def test_ask_appends_each_turn_json_and_streamed(server):
    url, carol = server.url, user("carol")
    conversation = create(url, carol)
    answered = ask(url, carol, conversation["id"])
    assert not answered["abstained"] and answered["citations"]
    streamed = ask_streamed(url, carol, conversation["id"], "抢劫罪怎么判？")
    got = httpx.get(f"{url}/v1/conversations/{conversation['id']}", headers=carol).json()
    assert [t["question"] for t in got["turns"]] == [QUESTION, "抢劫罪怎么判？"]
    assert got["turns"][0]["answer"] == answered  # the full response, as the client received it
    assert got["turns"][1]["answer"] == streamed
    assert got["title"] == QUESTION[:40]  # named by its first question
    summary = next(c for c in httpx.get(f"{url}/v1/conversations", headers=carol).json()["conversations"]
                   if c["id"] == conversation["id"])
    assert summary["turns"] == 2 and summary["updated"] > summary["created"]


def test_unknown_conversation_is_refused_before_answering(server):
    url, dan = server.url, user("dan")
    for stream in (False, True):
        payload = {"domain": "legal", "question": QUESTION, "conversation_id": "0" * 32, "stream": stream}
        r = httpx.post(f"{url}/v1/ask", json=payload, headers=dan, timeout=60)
        assert r.status_code == 404 and r.json()["error"]["code"] == "conversation_not_found"
    r = httpx.post(f"{url}/v1/ask", json={"domain": "legal", "question": "x", "conversation_id": "../etc"})
    assert r.status_code == 422
    r = httpx.post(f"{url}/v1/conversations", json={"domain": "cooking"}, headers=dan)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_domain"


def test_export_markdown_and_docx_with_sources(server):
    url, erin = server.url, user("erin")
    conversation = create(url, erin, title="Homicide sentencing")
    answer = ask(url, erin, conversation["id"])
    citation = answer["citations"][0]
    passage = next(h["text"] for h in answer["hits"] if h["chunk_id"] == citation["chunk_id"])
    assert MURDER_ARTICLE in citation["title"]

    md = httpx.get(f"{url}/v1/conversations/{conversation['id']}/export", params={"format": "md"}, headers=erin)
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert md.headers["content-disposition"].startswith("attachment;") and ".md" in md.headers["content-disposition"]
    for expected in ("# Homicide sentencing", QUESTION, answer["answer"], f"[{citation['marker']}]",
                     citation["title"], citation["quote"], passage.splitlines()[0]):
        assert expected in md.text

    docx_r = httpx.get(f"{url}/v1/conversations/{conversation['id']}/export?format=docx", headers=erin)
    assert docx_r.status_code == 200 and ".docx" in docx_r.headers["content-disposition"]
    import docx

    text = "\n".join(p.text for p in docx.Document(io.BytesIO(docx_r.content)).paragraphs)
    for expected in ("Homicide sentencing", QUESTION, answer["answer"], citation["title"], citation["quote"],
                     passage):
        assert expected in text
    bad = httpx.get(f"{url}/v1/conversations/{conversation['id']}/export?format=pdf", headers=erin)
    assert bad.status_code == 422


def check_apart(url: str, owner: dict[str, str], other: dict[str, str]) -> None:
    """`owner` makes a conversation with a turn; `other` can neither list, read, export, extend nor delete it."""
    mine = create(url, owner)["id"]
    ask(url, owner, mine)
    listed = httpx.get(f"{url}/v1/conversations", headers=other).json()["conversations"]
    assert mine not in [c["id"] for c in listed]
    for path in (f"/v1/conversations/{mine}", f"/v1/conversations/{mine}/export?format=md"):
        assert httpx.get(url + path, headers=other).status_code == 404  # 404, not 403: no hint that it exists
    assert httpx.delete(f"{url}/v1/conversations/{mine}", headers=other).status_code == 404
    payload = {"domain": "legal", "question": QUESTION, "conversation_id": mine}
    assert httpx.post(f"{url}/v1/ask", json=payload, headers=other, timeout=60).status_code == 404
    got = httpx.get(f"{url}/v1/conversations/{mine}", headers=owner).json()
    assert len(got["turns"]) == 1  # untouched by the other owner's attempts


def test_two_browser_sessions_never_see_each_other(server):
    check_apart(server.url, user("frank"), user("grace"))
    check_apart(server.url, user("grace"), {})  # no header: the anonymous owner
    r = httpx.get(f"{server.url}/v1/conversations", headers={"X-Dossier-User": "../../x"})
    assert r.status_code == 400 and "X-Dossier-User" in r.json()["error"]["reason"]


def test_two_api_keys_never_see_each_other(citing_pipeline, tmp_path: Path):
    keys = KeyStore(tmp_path / "keys.json")
    _, first = keys.add("first", Scopes())
    _, second = keys.add("second", Scopes())
    store = ConversationStore(tmp_path / "conversations.sqlite")
    app = create_app(["legal"], build=lambda _: citing_pipeline, api_keys=[], keys_file=keys.path,
                     conversations=store)
    same_user = user("shared")  # with keys on the header is ignored: the key is the owner
    with LiveServer(app) as live:
        assert httpx.get(f"{live.url}/v1/conversations").status_code == 401
        check_apart(live.url, {"Authorization": f"Bearer {first}", **same_user},
                    {"Authorization": f"Bearer {second}", **same_user})
