"""Keys, scopes, limits, CORS and the audit log over a real uvicorn server on 127.0.0.1, with a real key file.
Pipelines are real `RagPipeline`s over protocol fakes (one statute article retrieved, a generator that answers
after `delay_s`): who may ask and how much, not what is answered, is under test here."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import fixed_retriever
from live_server import LiveServer

from api import create_app
from api.audit import AuditLog
from api.keys import KeyStore, Scopes
from api.limits import Limits
from core.protocols import GenerationParams, Message
from core.records import Chunk, Hit
from domains import load_domain
from rag.pipeline import RagPipeline

ARTICLE = "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑；情节较轻的，处三年以上十年以下有期徒刑。"
QUESTION = "故意杀人罪判几年？"
ASK = {"domain": "legal", "question": QUESTION}
CHAT = {"model": "dossier-legal", "messages": [{"role": "user", "content": QUESTION}]}
ORIGIN = "https://app.example.org"


class SlowGenerator:
    """Answers every call with one cited sentence, after `delay_s` (a generator that takes its time)."""

    name = "slow"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def load(self) -> SlowGenerator:
        return self

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        time.sleep(self.delay_s)
        return "故意杀人的，处死刑或者无期徒刑[1]。"

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        yield self.generate(messages, params)


def builder(delay_s: float = 0.0):
    chunk = Chunk("刑法#232", "刑法#232", ARTICLE, 0, len(ARTICLE), title="中华人民共和国刑法 第二百三十二条")
    hits = [Hit(chunk, 1.0, "zscore", {"dense": 0.9, "zscore": 1.0})]  # over every domain's threshold
    return lambda domain: RagPipeline(load_domain(domain), fixed_retriever(hits), SlowGenerator(delay_s))


def serve(keys: KeyStore | None = None, delay_s: float = 0.0, **options: Any) -> LiveServer:
    app = create_app(["legal", "medical"], build=builder(delay_s), api_keys=[],
                     keys_file=keys.path if keys else None, **options)
    return LiveServer(app)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys.json")


def error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    return r.json()["error"]["reason"]


def test_keys_are_required_once_one_exists_and_a_revoked_key_stops_at_once(keys):
    with serve(keys) as server:
        assert httpx.post(f"{server.url}/v1/ask", json=ASK, timeout=30).status_code == 200  # no key yet: open
        record, key = keys.add("ci", Scopes())
        assert httpx.post(f"{server.url}/v1/ask", json=ASK, headers=bearer(key), timeout=30).status_code == 200
        assert "needs an API key" in error(httpx.post(f"{server.url}/v1/ask", json=ASK), 401, "unauthorized")
        wrong = key[:-2] + ("xy" if not key.endswith("xy") else "zz")
        assert error(httpx.post(f"{server.url}/v1/ask", json=ASK, headers=bearer(wrong)), 401, "unauthorized")
        KeyStore(keys.path).revoke(record.id)  # what `dossier keys revoke` does, while the server runs
        r = httpx.post(f"{server.url}/v1/ask", json=ASK, headers=bearer(key))
        assert error(r, 401, "unauthorized").startswith(f"API key {record.id} was revoked")
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # probes stay open


def test_a_key_scoped_to_medical_may_not_ask_legal(keys):
    from openai import OpenAI, PermissionDeniedError

    _, medical = keys.add("clinic", Scopes(domains=("medical",)))
    _, admin = keys.add("ops", Scopes(admin=True))
    with serve(keys) as server:
        r = httpx.post(f"{server.url}/v1/ask", json=ASK, headers=bearer(medical), timeout=30)
        assert "may not use domain 'legal'; its domains: medical" in error(r, 403, "forbidden")
        r = httpx.post(f"{server.url}/v1/chat/completions", json=CHAT, headers=bearer(medical), timeout=30)
        assert "may not use domain 'legal'" in error(r, 403, "forbidden")  # model dossier-legal is the domain
        r = httpx.post(f"{server.url}/v1/ask", json=ASK | {"domain": "medical"}, headers=bearer(medical), timeout=30)
        assert r.status_code == 200, r.text
        client = OpenAI(base_url=f"{server.url}/v1", api_key=medical, max_retries=0)
        assert [m.id for m in client.models.list()] == ["dossier-medical"]  # only what the key may use
        with pytest.raises(PermissionDeniedError):
            client.chat.completions.create(**CHAT)
        domains = httpx.get(f"{server.url}/v1/domains", headers=bearer(medical)).json()["domains"]
        assert [d["name"] for d in domains] == ["medical"]
        assert error(httpx.get(f"{server.url}/metrics", headers=bearer(medical)), 403, "forbidden")
        assert httpx.get(f"{server.url}/metrics", headers=bearer(admin)).status_code == 200  # admin only
        assert httpx.get(f"{server.url}/metrics").status_code == 401


def test_over_the_rate_a_key_gets_429_with_retry_after_then_recovers(keys):
    _, first = keys.add("first", Scopes())
    _, second = keys.add("second", Scopes())
    search = {"domain": "legal", "query": QUESTION, "k": 1}
    with serve(keys, limits=Limits(requests_per_minute=60, burst=2)) as server:  # one a second, two at once
        def post(key: str) -> httpx.Response:
            return httpx.post(f"{server.url}/v1/search", json=search, headers=bearer(key), timeout=30)

        assert [post(first).status_code, post(first).status_code] == [200, 200]
        r = post(first)
        assert "over its limit of 60 requests a minute" in error(r, 429, "rate_limited")
        assert post(second).status_code == 200  # a bucket per key
        time.sleep(int(r.headers["Retry-After"]))
        assert post(first).status_code == 200


def test_without_keys_the_rate_is_per_client_address():
    with serve(limits=Limits(requests_per_minute=60, burst=1)) as server:
        assert httpx.get(f"{server.url}/v1/domains").status_code == 200
        r = httpx.get(f"{server.url}/v1/domains")
        assert "client 127.0.0.1 is over" in error(r, 429, "rate_limited") and int(r.headers["Retry-After"]) >= 1


def test_an_oversize_body_is_refused_before_it_is_read_whole():
    with serve(limits=Limits(max_body_bytes=2_000)) as server:
        big = {"domain": "legal", "question": "盗" * 1_000}  # 3 bytes a character in UTF-8
        r = httpx.post(f"{server.url}/v1/ask", json=big)
        assert error(r, 413, "too_large") == "request body over 2000 bytes"
        body = json.dumps(big).encode()
        chunked = httpx.post(f"{server.url}/v1/ask", content=iter([body[:1000], body[1000:]]),
                             headers={"content-type": "application/json"})  # no Content-Length
        assert error(chunked, 413, "too_large")
        small = json.dumps(ASK).encode()
        r = httpx.post(f"{server.url}/v1/ask", content=iter([small[:10], small[10:]]),
                       headers={"content-type": "application/json"}, timeout=30)
        assert r.status_code == 200, r.text  # a chunked body under the limit reaches the route whole


def test_an_answer_past_the_deadline_is_504_and_a_stream_ends_with_the_reason():
    with serve(delay_s=3.0, limits=Limits(answer_deadline_s=0.5)) as server:
        for path, payload in (("/v1/ask", ASK), ("/v1/chat/completions", CHAT)):
            t0 = time.monotonic()
            r = httpx.post(server.url + path, json=payload, timeout=30)
            assert "no answer within 0.5 s" in error(r, 504, "deadline_exceeded")
            assert time.monotonic() - t0 < 2.5  # answered at the deadline, not when the generator was done
        with httpx.stream("POST", f"{server.url}/v1/ask", json=ASK | {"stream": True}, timeout=30) as r:
            events = [line[5:].strip() for line in r.iter_lines() if line.startswith("data:")]
        assert r.status_code == 200  # the status line left before the deadline could be known
        assert json.loads(events[-1])["error"]["code"] == "deadline_exceeded"


def test_cors_preflight_is_allowed_only_for_the_configured_origin():
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    with serve(cors_origins=[ORIGIN]) as server:
        r = httpx.options(f"{server.url}/v1/ask", headers=preflight | {"Origin": ORIGIN})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        r = httpx.options(f"{server.url}/v1/ask", headers=preflight | {"Origin": "https://evil.example"})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    with serve() as server:  # default: no origin is allowed
        r = httpx.options(f"{server.url}/v1/ask", headers=preflight | {"Origin": ORIGIN})
        assert "access-control-allow-origin" not in r.headers


def audit_lines(path: Path, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10  # a line is written once its response has ended
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)
    raise AssertionError(f"{path} has fewer than {count} lines")


@pytest.mark.parametrize("questions", [False, True], ids=["default", "with-questions"])
def test_the_audit_log_names_the_key_id_never_the_key(keys, tmp_path, questions):
    record, key = keys.add("clinic", Scopes(domains=("medical",)))
    log_path = tmp_path / "audit" / "audit.log"
    with serve(keys, audit=AuditLog(log_path, questions=questions)) as server:
        httpx.post(f"{server.url}/v1/ask", json=ASK | {"domain": "medical"}, headers=bearer(key), timeout=30)
        httpx.post(f"{server.url}/v1/chat/completions", json=CHAT, headers=bearer(key), timeout=30)
        httpx.post(f"{server.url}/v1/ask", json=ASK, timeout=30)
        httpx.get(f"{server.url}/healthz")  # not a /v1 route: not audited
        lines = audit_lines(log_path, 3)
    assert [(x["route"], x["domain"], x["status"], x["key"]) for x in lines] == [
        ("/v1/ask", "medical", 200, record.id),
        ("/v1/chat/completions", "legal", 403, record.id),
        ("/v1/ask", None, 401, None),
    ]
    assert all(x["client"] == "127.0.0.1" and x["latency_ms"] >= 0 and x["time"] for x in lines)
    text = log_path.read_text()
    assert key not in text and key[12:] not in text
    assert (QUESTION in text) is questions and all(("question" in x) is questions for x in lines)
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
