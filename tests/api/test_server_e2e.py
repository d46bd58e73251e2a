"""End to end over a real uvicorn server: real retrieval (MiniLM + jieba BM25 on shipped Criminal Law articles),
the tiny real transformers generator (random text), the official openai client."""

from __future__ import annotations

import json

import httpx
import pytest
from api_support import COOKING_QUESTION, needs_minilm

pytestmark = needs_minilm

QUESTION = "故意杀人罪判几年？"
MURDER_ARTICLE = "第二百三十二条"


def check_citations_point_into_hits(body: dict) -> None:
    hits = {h["chunk_id"]: h for h in body["hits"]}
    for c in body["citations"]:
        hit = hits[c["chunk_id"]]  # a citation to a chunk that was not retrieved is a bug
        assert c["doc_id"] == hit["doc_id"]
        assert hit["start"] <= c["start"] < c["end"] <= hit["end"]
        offset = c["start"] - hit["start"]
        assert c["quote"] == hit["text"][offset : offset + c["end"] - c["start"]]
    assert set(body["trace"]["evidence"]) <= set(hits)


def test_ask_answers_from_the_corpus_with_checkable_citations(live_server):
    r = httpx.post(f"{live_server.url}/v1/ask", json={"domain": "legal", "question": QUESTION}, timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body["abstained"]
    assert MURDER_ARTICLE in body["hits"][0]["title"]
    assert body["disclaimer"]
    check_citations_point_into_hits(body)
    trace = body["trace"]
    assert {"rewrite", "retrieve", "generate", "cite", "total"} <= set(trace["timings_ms"])
    assert {"retrieve.bm25", "retrieve.fusion"} <= set(trace["timings_ms"])  # the retriever's own stages
    assert "precision" in trace["citations"]


def test_ask_streams_deltas_then_the_cited_answer(live_server):
    events = []
    payload = {"domain": "legal", "question": QUESTION, "stream": True}
    with httpx.stream("POST", f"{live_server.url}/v1/ask", json=payload, timeout=120) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line[5:].strip() for line in r.iter_lines() if line.startswith("data:")]
    assert events[-1] == "[DONE]"
    final = json.loads(events[-2])["answer"]
    assert "first_token" in final["trace"]["timings_ms"]
    check_citations_point_into_hits(final)
    evidence = json.loads(events[0])["evidence"]  # the passages first, numbered as the answer's markers
    assert [p["n"] for p in evidence] == list(range(1, len(evidence) + 1)) and evidence
    assert all(p["text"] and p["chunk_id"] for p in evidence)
    assert all(evidence[c["marker"] - 1]["chunk_id"] == c["chunk_id"] for c in final["citations"])
    assert all("delta" in json.loads(e) for e in events[1:-2])


def test_follow_up_is_rewritten_before_retrieval(live_server):
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "处死刑、无期徒刑[1]。"}]
    payload = {"domain": "legal", "question": "那情节较轻的呢？", "history": history}
    body = httpx.post(f"{live_server.url}/v1/ask", json=payload, timeout=120).json()
    rewrite = body["trace"]["rewrite"]
    assert rewrite is None or rewrite["from"] == "那情节较轻的呢？"
    assert body["trace"]["query"] == (rewrite["to"] if rewrite else "那情节较轻的呢？")
    assert "rewrite" in body["trace"]["timings_ms"]


def test_openai_client_streams_with_citations_last(live_server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", max_retries=0)
    assert "dossier-legal" in [m.id for m in client.models.list()]
    stream = client.chat.completions.create(
        model="dossier-legal", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    extra = final.model_extra
    assert "citations" in extra and not extra["dossier"]["abstained"]
    hits = client.post("/search", body={"domain": "legal", "query": QUESTION, "k": 5}, cast_to=httpx.Response).json()
    by_id = {h["chunk_id"]: h for h in hits["hits"]}
    for c in extra["citations"]:
        assert c["quote"] in by_id[c["chunk_id"]]["text"]


def test_openai_client_whole_completion(live_server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(model="dossier-legal", messages=[{"role": "user", "content": QUESTION}])
    assert reply.choices[0].message.role == "assistant"
    assert reply.model_extra["dossier"]["disclaimer"] in reply.choices[0].message.content


def test_out_of_corpus_question_abstains_without_generating(live_server, calibrated_threshold):
    body = httpx.post(
        f"{live_server.url}/v1/ask", json={"domain": "legal", "question": COOKING_QUESTION}, timeout=60
    ).json()
    assert body["abstained"], body["trace"]["abstention"]
    assert body["trace"]["abstention"]["score"] < calibrated_threshold
    assert "generate" not in body["trace"]["timings_ms"]
    assert body["hits"]  # the nearest passages are shown
    assert body["citations"] == []


def test_search_returns_stage_scores(live_server):
    r = httpx.post(f"{live_server.url}/v1/search", json={"domain": "legal", "query": "抢劫罪怎么判？", "k": 3})
    hits = r.json()["hits"]
    assert len(hits) == 3 and "第二百六十三条" in hits[0]["title"]
    assert {"dense", "bm25"} <= set(hits[0]["stage_scores"])


def test_meta_routes(live_server):
    url = live_server.url
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz").json()["domains"] == ["legal"]
    domains = httpx.get(f"{url}/v1/domains").json()["domains"]
    assert domains[0]["name"] == "legal" and domains[0]["disclaimer"]
    metrics = httpx.get(f"{url}/metrics").text
    assert "dossier_requests_total" in metrics and 'route="/v1/ask"' in metrics


def test_feedback_becomes_preference_and_kto_records(live_server, feedback_root, legal_pipeline):
    payload = {"domain": "legal", "question": QUESTION, "answer": "坏答案", "rating": "down", "preferred": "好答案[1]"}
    r = httpx.post(f"{live_server.url}/v1/feedback", json=payload)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["stored"]) == ["kto.jsonl", "preferences.jsonl"]
    pref = json.loads((feedback_root / "legal" / "preferences.jsonl").read_text().splitlines()[-1])
    assert (pref["chosen"], pref["rejected"]) == ("好答案[1]", "坏答案")
    served = [{"role": m.role, "content": m.content} for m in legal_pipeline.prompt(QUESTION)]
    assert pref["prompt"] == served  # the product's prompt: system, numbered evidence, the question
    assert served[-1]["role"] == "user" and QUESTION in served[-1]["content"] and "[1] " in served[-1]["content"]
    kto = json.loads((feedback_root / "legal" / "kto.jsonl").read_text().splitlines()[-1])
    assert kto["label"] is False and kto["completion"] == "坏答案" and kto["created"] and kto["prompt"] == served


BAD_REQUESTS = [
    ("missing question", "/v1/ask", {"domain": "legal"}, 422, "invalid_request"),
    ("missing domain", "/v1/ask", {"question": "x"}, 422, "invalid_request"),
    ("1 MB question", "/v1/ask", {"domain": "legal", "question": "盗" * 1_000_000}, 413, "too_large"),
    ("5k-char question", "/v1/ask", {"domain": "legal", "question": "盗" * 5_000}, 422, "invalid_request"),
    ("k = 10000", "/v1/ask", {"domain": "legal", "question": "x", "k": 10_000}, 422, "invalid_request"),
    ("unknown domain", "/v1/ask", {"domain": "cooking", "question": "x"}, 404, "unknown_domain"),
    ("too much history", "/v1/ask",
     {"domain": "legal", "question": "x", "history": [{"role": "user", "content": "y"}] * 21}, 422, "invalid_request"),
    ("unknown field", "/v1/search", {"domain": "legal", "query": "x", "top": 3}, 422, "invalid_request"),
    ("unknown model", "/v1/chat/completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]},
     404, "model_not_found"),
    ("feedback without rating", "/v1/feedback", {"domain": "legal", "question": "x", "answer": "y"},
     422, "invalid_request"),
]


@pytest.mark.parametrize(("name", "path", "payload", "status", "code"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_malformed_requests_get_a_4xx_with_a_reason(live_server, name, path, payload, status, code):
    r = httpx.post(live_server.url + path, json=payload, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["reason"]


def test_invalid_json_and_unknown_route_then_still_serving(live_server):
    r = httpx.post(f"{live_server.url}/v1/ask", content=b'{"domain": "legal", "question": ', timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.get(f"{live_server.url}/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["reason"]
    ok = httpx.post(f"{live_server.url}/v1/search", json={"domain": "legal", "query": QUESTION, "k": 1})
    assert ok.status_code == 200 and ok.json()["hits"]


def test_bearer_token_auth_when_keys_are_set(legal_pipeline):
    from live_server import LiveServer
    from openai import AuthenticationError, OpenAI

    from api import create_app

    with LiveServer(create_app(["legal"], build=lambda _: legal_pipeline, api_keys=["s3cret"])) as server:
        body = {"domain": "legal", "query": QUESTION, "k": 1}
        r = httpx.post(f"{server.url}/v1/search", json=body)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        for token, status in (("nope", 401), ("s3cret", 200)):
            headers = {"Authorization": f"Bearer {token}"}
            assert httpx.post(f"{server.url}/v1/search", json=body, headers=headers).status_code == status
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # probes stay open
        with pytest.raises(AuthenticationError):
            OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).models.list()
        assert OpenAI(base_url=f"{server.url}/v1", api_key="s3cret", max_retries=0).models.list().data
