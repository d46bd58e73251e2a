"""The bundle served over HTTP, like the full service's faces: POST /v1/ask (the answer as `rag.presenting` shows
it), POST /v1/chat/completions (OpenAI-compatible, JSON or SSE, citations in an extra `citations` field and the
abstention / trace under `dossier`), GET /v1/models and /healthz. One domain, model `dossier-<domain>`.

No keys, limits or audit log: the runner binds 127.0.0.1 by default and is meant for one device's own use.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, Literal

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from core.protocols import Message
from core.records import Answer
from rag.pipeline import RagPipeline
from rag.presenting import answer_epilogue, answer_json

MODEL_PREFIX = "dossier-"
MAX_QUESTION_CHARS = 4_000


class Turn(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = ""


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    history: list[Turn] = []
    k: int | None = Field(default=None, ge=1, le=50)


class ChatRequest(BaseModel):
    model: str
    messages: list[Turn]
    stream: bool = False
    k: int | None = Field(default=None, ge=1, le=50)


def split_chat(body: ChatRequest, domain: str) -> tuple[str, tuple[Message, ...]]:
    """(question, history): the last user turn asks; system turns are dropped (the domain's system prompt rules)."""
    if body.model != MODEL_PREFIX + domain:
        raise HTTPException(404, f"model {body.model!r} is unknown; this bundle serves {MODEL_PREFIX + domain}")
    turns = [t for t in body.messages if t.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].content.strip():
        raise HTTPException(422, "messages: the last user / assistant message must be a user question")
    question = turns[-1].content.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise HTTPException(422, f"messages: the question is longer than {MAX_QUESTION_CHARS} characters")
    return question, tuple(Message(t.role, t.content) for t in turns[:-1])[-40:]


def extras(answer: Answer) -> dict[str, Any]:
    return {"citations": [asdict(c) for c in answer.citations],
            "dossier": {"answer": answer.text, "abstained": answer.abstained, "abstain_reason": answer.abstain_reason,
                        "disclaimer": answer.disclaimer, "trace": dict(answer.trace)}}


def _sse(data: Any) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(pipeline: RagPipeline, manifest: dict[str, Any]) -> FastAPI:
    app = FastAPI(title=f"Dossier edge · {pipeline.cfg.display_name}")
    domain, started = pipeline.domain, int(time.time())

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "domain": domain, "bundle_created": manifest.get("created")}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list",
                "data": [{"id": MODEL_PREFIX + domain, "object": "model", "created": started, "owned_by": "dossier"}]}

    @app.post("/v1/ask")
    def ask(body: AskRequest) -> dict[str, Any]:
        history = tuple(Message(t.role, t.content) for t in body.history if t.role != "system")
        return answer_json(pipeline.answer(body.question.strip(), history, k=body.k), domain)

    @app.post("/v1/chat/completions", response_model=None)
    def chat(body: ChatRequest) -> dict[str, Any] | StreamingResponse:
        question, history = split_chat(body, domain)
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            events = _chunks(pipeline, body, question, history, cid, created)
            return StreamingResponse(events, media_type="text/event-stream")
        answer = pipeline.answer(question, history, k=body.k)
        message = {"role": "assistant", "content": answer.text + answer_epilogue(answer)}
        return {"id": cid, "object": "chat.completion", "created": created, "model": body.model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": None,
                **extras(answer)}

    return app


def _chunks(pipeline: RagPipeline, body: ChatRequest, question: str, history: tuple[Message, ...], cid: str,
            created: int) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": body.model}
        return _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    yield chunk({"role": "assistant", "content": ""})
    for piece in pipeline.stream(question, history, k=body.k):
        if piece.answer is not None:
            if epilogue := answer_epilogue(piece.answer):
                yield chunk({"content": epilogue})
            yield chunk({}, "stop", **extras(piece.answer))
        elif piece.delta:
            yield chunk({"content": piece.delta})
    yield _sse("[DONE]")
