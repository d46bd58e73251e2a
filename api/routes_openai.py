"""OpenAI-compatible face: GET /v1/models and POST /v1/chat/completions (JSON or SSE), model `dossier-<domain>`.

The last user message is the question; earlier user / assistant messages are the history (system messages are
ignored: the domain's system prompt applies). Citations travel in an extra `citations` field of the response
and of the final SSE chunk, sent before `data: [DONE]`; `dossier` holds abstention and the trace.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from api.audit import note_question
from api.auth import allowed_domains, require_api_key
from api.errors import ApiError
from api.limits import within_deadline
from api.routes_ask import count_answer
from api.schemas import ChatCompletionRequest
from api.state import MODEL_PREFIX, pipeline_for, sse, sse_guard
from core.protocols import Message
from core.records import Answer
from rag.presenting import answer_epilogue

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])


@router.get("/models")
def models(request: Request) -> dict[str, Any]:
    created = request.app.state.started
    pipelines = request.app.state.pipelines
    # `generator` names what answers behind each model: the base GGUF / weights and the tuned adapter, if any
    data = [
        {"id": MODEL_PREFIX + d, "object": "model", "created": created, "owned_by": "dossier",
         "generator": pipelines[d].generator.name}
        for d in allowed_domains(request, sorted(pipelines))
    ]
    return {"object": "list", "data": data}


def split_chat(body: ChatCompletionRequest) -> tuple[str, str, tuple[Message, ...]]:
    """(domain, question, history) from an OpenAI request."""
    if not body.model.startswith(MODEL_PREFIX):
        raise ApiError(404, "model_not_found", f"model {body.model!r} is unknown; models are named dossier-<domain>")
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise ApiError(422, "invalid_request", "messages: the last user / assistant message must be a user question")
    question = turns[-1].text().strip()
    if len(question) > 4_000:
        raise ApiError(422, "invalid_request", "messages: the question is longer than 4000 characters")
    history = tuple(Message(m.role, m.text()) for m in turns[:-1])  # type: ignore[arg-type]
    return body.model.removeprefix(MODEL_PREFIX), question, history[-40:]


def extras(answer: Answer) -> dict[str, Any]:
    return {
        "citations": [asdict(c) for c in answer.citations],
        "dossier": {
            "answer": answer.text,
            "abstained": answer.abstained,
            "abstain_reason": answer.abstain_reason,
            "disclaimer": answer.disclaimer,
            "trace": dict(answer.trace),
        },
    }


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    """`model` dossier-<domain> names the domain (a key scoped elsewhere gets 403); 504 past the answer deadline."""
    domain, question, history = split_chat(body)
    note_question(request, question)
    pipeline = pipeline_for(request, domain)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    deadline_s = request.app.state.limits.answer_deadline_s
    if body.stream:
        events = _chunks(request, body, domain, question, history, completion_id, created)
        return StreamingResponse(sse_guard(events, deadline_s), media_type="text/event-stream")
    answer = await within_deadline(deadline_s, partial(pipeline.answer, question, history, k=body.k,
                                                       filters=body.filters))
    count_answer(request, domain, answer)
    message = {"role": "assistant", "content": answer.text + answer_epilogue(answer)}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": None,
        **extras(answer),
    }


def _chunks(
    request: Request, body: ChatCompletionRequest, domain: str, question: str, history: tuple[Message, ...],
    completion_id: str, created: int,
) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        base = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": body.model}
        return sse({**base, "choices": [choice], **extra})

    yield chunk({"role": "assistant", "content": ""})
    for piece in pipeline_for(request, domain).stream(question, history, k=body.k, filters=body.filters):
        if piece.answer is not None:
            count_answer(request, domain, piece.answer)
            if epilogue := answer_epilogue(piece.answer):
                yield chunk({"content": epilogue})
            yield chunk({}, "stop", **extras(piece.answer))
        elif piece.delta:
            yield chunk({"content": piece.delta})
    yield sse("[DONE]")
