"""The app's REST client against a recording transport: the owner header, the new routes' shapes, error bodies."""

from __future__ import annotations

import json

import httpx
import pytest

from ui.client import OWNER_HEADER, DossierApiError, DossierClient

OWNER = "browser-session_01"


def recording(client: DossierClient, reply) -> list[httpx.Request]:
    """Route the client's requests to `reply(request) -> httpx.Response`, keeping each request."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(request)

    client.http = httpx.Client(base_url=client.base_url, headers=client.http.headers,
                               transport=httpx.MockTransport(handler))
    return seen


def test_the_owner_header_goes_with_every_request_unless_a_key_names_the_owner() -> None:
    client = DossierClient("http://api", api_key="", owner=OWNER)
    seen = recording(client, lambda r: httpx.Response(200, json={"conversations": []}))
    client.conversations()
    assert seen[0].headers[OWNER_HEADER] == OWNER
    keyed = DossierClient("http://api", api_key="s3cret", owner=OWNER)
    seen = recording(keyed, lambda r: httpx.Response(200, json={"conversations": []}))
    keyed.conversations()
    assert OWNER_HEADER not in seen[0].headers and seen[0].headers["authorization"] == "Bearer s3cret"


@pytest.mark.parametrize("owner", ["short", "x" * 65, "has space!", "名字名字名字名字"])
def test_a_malformed_owner_id_is_refused_before_any_request(owner: str) -> None:
    with pytest.raises(ValueError, match="owner id"):
        DossierClient("http://api", api_key="", owner=owner)


def test_conversation_routes() -> None:
    client = DossierClient("http://api", api_key="", owner=OWNER)

    def reply(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.url.path.endswith("/export"):
            return httpx.Response(200, content=b"# export")
        return httpx.Response(200, json={"id": "c1", "domain": "legal", "title": "t", "turns": []})

    seen = recording(client, reply)
    assert client.create_conversation("legal", title="t")["id"] == "c1"
    client.conversation("c1")
    client.delete_conversation("c1")
    assert client.export_conversation("c1", "docx") == b"# export"
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", "/v1/conversations"), ("GET", "/v1/conversations/c1"), ("DELETE", "/v1/conversations/c1"),
        ("GET", "/v1/conversations/c1/export")]
    assert json.loads(seen[0].content) == {"domain": "legal", "title": "t"}
    assert seen[3].url.params["format"] == "docx"


def test_an_upload_is_multipart_and_a_refusal_carries_status_and_reason() -> None:
    client = DossierClient("http://api", api_key="", owner=OWNER)
    refusal = {"error": {"code": "too_large", "reason": "the file is over 50 MB"}}
    seen = recording(client, lambda r: httpx.Response(413, json=refusal))
    with pytest.raises(DossierApiError) as err:
        client.upload("legal", "big.pdf", b"%PDF-", "application/pdf")
    assert (err.value.status, err.value.code, err.value.reason) == (413, "too_large", "the file is over 50 MB")
    request = seen[0]
    assert request.url.path == "/v1/collections/legal/files"
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'name="file"; filename="big.pdf"' in request.content


def test_a_non_json_error_still_says_what_happened() -> None:
    client = DossierClient("http://api", api_key="")
    recording(client, lambda r: httpx.Response(502, text="bad gateway"))
    with pytest.raises(DossierApiError, match="http_502: bad gateway") as err:
        client.collection("legal")
    assert err.value.status == 502


def test_ask_stream_sends_the_options_and_reads_deltas_then_the_answer() -> None:
    client = DossierClient("http://api", api_key="", owner=OWNER)
    body = 'data: {"delta": "a"}\n\ndata: {"answer": {"answer": "a[1]"}}\n\ndata: [DONE]\n\n'
    seen = recording(client, lambda r: httpx.Response(200, text=body, headers={"content-type": "text/event-stream"}))
    events = list(client.ask_stream("legal", "q?", [], k=3, filters={"status": "现行有效"}, conversation_id="c1",
                                    collection=True))
    assert events == [{"delta": "a"}, {"answer": {"answer": "a[1]"}}]
    sent = json.loads(seen[0].content)
    assert sent == {"domain": "legal", "question": "q?", "history": [], "stream": True, "k": 3,
                    "filters": {"status": "现行有效"}, "conversation_id": "c1", "collection": True}
    list(client.ask_stream("legal", "q?", []))
    assert set(json.loads(seen[1].content)) == {"domain", "question", "history", "stream"}  # older servers too


def test_an_error_inside_the_stream_is_raised() -> None:
    client = DossierClient("http://api", api_key="")
    body = 'data: {"delta": "a"}\n\ndata: {"error": {"code": "deadline_exceeded", "reason": "too slow"}}\n\n'
    recording(client, lambda r: httpx.Response(200, text=body))
    with pytest.raises(DossierApiError, match="deadline_exceeded: too slow"):
        list(client.ask_stream("legal", "q?", []))
