"""Questions as a hostile client may send them, to the real app (`create_app` over a recording retriever,
generator and feedback store, with an audit log that keeps questions): a NUL is refused with a 422 that says why;
invisible formatting (zero-width characters, bidi embeddings / overrides / isolates / marks, tag characters) and
control characters are removed before the retriever, the prompt, the audit log or a feedback record sees the text
(api/question_text.py), while what a person reads stays as it was."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fakes import fixed_retriever
from fastapi.testclient import TestClient

from api import create_app
from api.audit import AuditLog
from api.question_text import clean_question
from core.protocols import GenerationParams, Message
from core.records import Chunk, Hit
from domains import load_domain
from rag.pipeline import RagPipeline

ARTICLE = "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑；情节较轻的，处三年以上十年以下有期徒刑。"
QUESTION = "故意杀人罪判几年？"
# the same question as a reader sees it, with bidi controls, zero-width characters and tag characters inside
HIDDEN = "\ufeff故意\u202e杀人\u200b罪\u2066判\u2069几\u200d年\u00ad？\U000e0069\U000e0067\U000e006e"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u2061\u2062\u2063\u2064"
CONTROLS = "".join(map(chr, [*range(1, 9), *range(0x0E, 0x20), *range(0x7F, 0xA0)]))  # but tab, LF, VT, FF, CR


class RecordingGenerator:
    name = "recording"

    def __init__(self) -> None:
        self.calls: list[Sequence[Message]] = []

    def load(self) -> RecordingGenerator:
        return self

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        self.calls.append(messages)
        return "故意杀人的，处死刑或者无期徒刑[1]。"

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        yield self.generate(messages, params)


class RecordingFeedback:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, domain: str, records: list[tuple[str, dict[str, Any]]]) -> list[str]:
        self.records += [record for _, record in records]
        return [name for name, _ in records]


class Served:
    def __init__(self, audit_path: Path) -> None:
        chunk = Chunk("刑法#232", "刑法#232", ARTICLE, 0, len(ARTICLE), title="中华人民共和国刑法 第二百三十二条")
        self.retriever = fixed_retriever([Hit(chunk, 1.0, "zscore", {"dense": 0.9, "zscore": 1.0})])
        self.generator, self.feedback, self.audit_path = RecordingGenerator(), RecordingFeedback(), audit_path
        self.app = create_app(["legal"], api_keys=[], feedback=self.feedback,  # type: ignore[arg-type]
                              audit=AuditLog(audit_path, questions=True),
                              build=lambda d: RagPipeline(load_domain(d), self.retriever, self.generator))

    def last_audited_question(self) -> str:
        return json.loads(self.audit_path.read_text(encoding="utf-8").splitlines()[-1])["question"]

    def seen_by_the_model(self) -> str:
        return "".join(m.content for call in self.generator.calls for m in call)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, TestClient]]:
    served = Served(tmp_path_factory.mktemp("audit") / "audit.log")
    with TestClient(served.app) as client:
        yield served, client


def _body(route: str, text: str) -> tuple[str, dict[str, Any]]:
    return {
        "ask": ("/v1/ask", {"domain": "legal", "question": text}),
        "search": ("/v1/search", {"domain": "legal", "query": text}),
        "feedback": ("/v1/feedback", {"domain": "legal", "question": text, "answer": "答", "rating": "up"}),
        "chat": ("/v1/chat/completions", {"model": "dossier-legal", "messages": [{"role": "user", "content": text}]}),
        "chat_parts": ("/v1/chat/completions", {"model": "dossier-legal", "messages": [
            {"role": "user", "content": [{"type": "text", "text": text}]}]}),
    }[route]


ROUTES = ["ask", "search", "feedback", "chat", "chat_parts"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_nul_is_refused_with_a_reason(served: tuple[Served, TestClient], route: str) -> None:
    path, body = _body(route, "故意杀人\x00罪判几年？")
    r = served[1].post(path, json=body)
    assert r.status_code == 422, r.text
    assert "NUL character (\\x00) at position 4" in r.json()["error"]["reason"]


@pytest.mark.parametrize("route", ROUTES)
def test_invisible_characters_never_reach_the_retriever_the_model_the_log_or_a_record(
    served: tuple[Served, TestClient], route: str
) -> None:
    service, client = served
    service.retriever.queries.clear()
    service.generator.calls.clear()
    path, body = _body(route, HIDDEN)
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    assert service.retriever.queries[-1] == QUESTION  # search, answer, and the prompt a feedback record keeps
    assert service.last_audited_question() == QUESTION
    seen = service.seen_by_the_model()
    assert not set(seen) & set(BIDI + ZERO_WIDTH) and not any(0xE0000 <= ord(c) < 0xE0080 for c in seen)
    if route == "feedback":
        assert service.feedback.records[-1]["question"] == QUESTION
    elif route in ("ask", "search"):
        assert r.json()["question" if route == "ask" else "query"] == QUESTION


@pytest.mark.parametrize("route", ["ask", "search", "feedback"])
def test_a_question_of_invisible_characters_only_is_refused(served: tuple[Served, TestClient], route: str) -> None:
    path, body = _body(route, BIDI + ZERO_WIDTH + " \x1b")
    r = served[1].post(path, json=body)
    assert r.status_code == 422 and "empty once its invisible characters are removed" in r.json()["error"]["reason"]


def test_history_turns_are_cleaned_too(served: tuple[Served, TestClient]) -> None:
    service, client = served
    service.generator.calls.clear()
    history = [{"role": "user", "content": "什么\u202e是\u200b正当防卫"},
               {"role": "assistant", "content": "答\u2066复"}]
    r = client.post("/v1/ask", json={"domain": "legal", "question": "那么故意杀人呢？", "history": history})
    assert r.status_code == 200, r.text
    seen = service.seen_by_the_model()
    assert "什么是正当防卫" in seen and "答复" in seen and not set(seen) & set(BIDI + ZERO_WIDTH)
    r = client.post("/v1/ask", json={"domain": "legal", "question": "q", "history": [
        {"role": "assistant", "content": "a\x00"}]})
    assert r.status_code == 422 and "NUL" in r.json()["error"]["reason"]


def test_line_breaks_and_tabs_stay_and_other_controls_go() -> None:
    assert clean_question("第一行\r\n第二行\r第三行\u2028第四行\u2029") == "第一行\n第二行\n第三行\n第四行\n"
    assert clean_question("a\tb\vc\fd") == "a\tb c d"
    assert clean_question("\x1b[31m红\x1b[0m" + CONTROLS) == "[31m红[0m"


def test_every_format_character_is_removed_and_visible_text_is_kept() -> None:
    invisible = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert clean_question("a" + "".join(invisible) + "b") == "ab"
    visible = "故意杀人罪（一）ＡＢＣ１２３，。！？ ～ abc Ünïcödé עברית العربية 👍🏽 \u3000x"
    assert clean_question(visible) == visible  # full-width forms, spaces, RTL scripts and emoji are untouched
