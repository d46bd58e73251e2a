"""POST /v1/ask (JSON or SSE), /v1/search and /v1/feedback: thin layers over `RagPipeline`. Ask and search take
`collection: true` (the caller's uploaded files searched too, api/routes_collections.py); ask takes a
`conversation_id` (the turn kept server-side, api/routes_conversations.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.audit import note_question
from api.auth import require_api_key
from api.feedback import feedback_records
from api.limits import within_deadline
from api.routes_collections import with_collection
from api.routes_conversations import TurnRecorder, turn_recorder
from api.schemas import AskRequest, AskResponse, FeedbackRequest, SearchRequest, SearchResponse
from api.state import history_messages, pipeline_for, sse, sse_guard
from core.records import Answer
from rag.pipeline import RagPipeline
from rag.presenting import answer_json, evidence_json, hit_json

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])


def count_answer(request: Request, domain: str, answer: Answer) -> None:
    metrics = request.app.state.metrics
    metrics.answers.labels(domain, str(answer.abstained).lower()).inc()
    removed = (answer.trace.get("citations") or {}).get("removed", 0)
    metrics.citations_removed.labels(domain).inc(removed)


@router.post("/ask", response_model=AskResponse)
async def ask(body: AskRequest, request: Request) -> AskResponse | StreamingResponse:
    """The answer with its citations, or an abstention with the nearest passages. With `stream: true`, SSE
    events: first {"evidence": [passage with its marker n, ...]} (before the model reads its prompt; none when it
    abstains), then {"delta": text}, a last {"answer": <this response>}, then [DONE]. 504 past the answer deadline."""
    note_question(request, body.question)
    pipeline = pipeline_for(request, body.domain)
    recorder = await turn_recorder(request, body)  # an unknown conversation is a 404 before any answering
    if body.collection:
        pipeline = await run_in_threadpool(with_collection, request, body.domain, pipeline)
    history = history_messages(body.history)
    deadline_s = request.app.state.limits.answer_deadline_s
    if body.stream:
        events = sse_guard(_ask_events(request, body, history, pipeline, recorder), deadline_s)
        return StreamingResponse(events, media_type="text/event-stream")
    answer = await within_deadline(
        deadline_s, partial(pipeline.answer, body.question, history, k=body.k, filters=body.filters)
    )
    count_answer(request, body.domain, answer)
    response = AskResponse.model_validate(answer_json(answer, body.domain))
    if recorder is not None:
        await run_in_threadpool(recorder.record, response.model_dump(mode="json"))
    return response


def _ask_events(request: Request, body: AskRequest, history: tuple, pipeline: RagPipeline,
                recorder: TurnRecorder | None = None) -> Iterator[str]:
    for chunk in pipeline.stream(body.question, history, k=body.k, filters=body.filters):
        if chunk.answer is not None:
            count_answer(request, body.domain, chunk.answer)
            payload = answer_json(chunk.answer, body.domain)
            if recorder is not None:  # kept as the client receives it, before it is sent
                recorder.record(payload)
            yield sse({"answer": payload})
        elif chunk.evidence:
            yield sse({"evidence": evidence_json(chunk.evidence)})
        elif chunk.delta:
            yield sse({"delta": chunk.delta})
    yield sse("[DONE]")


@router.post("/search", response_model=SearchResponse)
def search(body: SearchRequest, request: Request) -> SearchResponse:
    note_question(request, body.query)
    pipeline = pipeline_for(request, body.domain)
    if body.collection:
        pipeline = with_collection(request, body.domain, pipeline)
    t0 = time.perf_counter()
    hits = pipeline.search(body.query, body.k, body.filters)
    took = round((time.perf_counter() - t0) * 1000, 2)
    return SearchResponse.model_validate(
        {"domain": body.domain, "query": body.query, "hits": [hit_json(h) for h in hits], "took_ms": took}
    )


@router.post("/feedback")
def feedback(body: FeedbackRequest, request: Request) -> dict:
    """Thumbs up / down -> a KTO record; a preferred answer -> a DPO preference pair, each with the prompt the
    pipeline sends for the question (rebuilt here: same index, same evidence)."""
    note_question(request, body.question)
    pipeline = pipeline_for(request, body.domain)
    prompt = pipeline.prompt(body.question, history_messages(body.history))
    stored = request.app.state.feedback.append(body.domain, feedback_records(body, prompt))
    return {"domain": body.domain, "stored": stored}
