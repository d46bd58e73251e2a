"""The bundle's HTTP face in-process (FastAPI's TestClient over the tiny bundle's pipeline): /v1/ask, the
OpenAI-compatible /v1/chat/completions as JSON and as SSE (citations in the last chunk, then [DONE]), /v1/models,
and the errors a client gets for a wrong model or an empty question."""

from __future__ import annotations

import json

import pytest
from api_support import OUT_OF_DOMAIN, needs_minilm
from edge_support import QUESTION

pytestmark = needs_minilm


@pytest.fixture(scope="module")
def client(edge_bundle):
    from fastapi.testclient import TestClient

    from edge.runtime import Threads, edge_pipeline, open_bundle
    from edge.server import create_app

    bundle = open_bundle(edge_bundle[0], hashes=False)
    pipeline = edge_pipeline(bundle, Threads(decode=1, prefill=1, embed=1), n_ctx=2048)
    with TestClient(create_app(pipeline, bundle.manifest)) as test_client:
        yield test_client


def _chat(question: str, **extra) -> dict:
    return {"model": "dossier-legal", "messages": [{"role": "system", "content": "ignored"},
                                                   {"role": "user", "content": question}], **extra}


def test_ask_and_models(client) -> None:
    body = client.post("/v1/ask", json={"question": OUT_OF_DOMAIN[1]}).json()
    assert body["abstained"] and body["disclaimer"] and body["hits"]
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["dossier-legal"]
    assert client.get("/healthz").json()["domain"] == "legal"


def test_chat_completions_streams_the_answer_then_its_citations(client) -> None:
    with client.stream("POST", "/v1/chat/completions", json=_chat(QUESTION, stream=True)) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.startswith("故意杀人的")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "第二百三十二条" in chunks[-1]["citations"][0]["title"] and not chunks[-1]["dossier"]["abstained"]


def test_chat_completions_errors(client) -> None:
    assert client.post("/v1/chat/completions", json={**_chat(QUESTION), "model": "dossier-medical"}).status_code == 404
    assert client.post("/v1/chat/completions", json=_chat("  ")).status_code == 422
    assert client.post("/v1/ask", json={"question": ""}).status_code == 422
