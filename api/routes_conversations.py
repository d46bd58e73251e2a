"""/v1/conversations: an owner's conversations kept by the server (api/conversations.py), and the file export of
one. /v1/ask appends to one when given its `conversation_id` (`turn_recorder`, checked before answering)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import allowed_domains, authorize_domain, require_api_key
from api.conversations import MAX_TURNS, Conversation, ConversationLimit, ConversationStore
from api.errors import ApiError
from api.export_docs import docx_export, markdown_export
from api.owner import owner_of, served_domain
from api.schemas import (
    ID_PATTERN,
    AskRequest,
    ConversationCreate,
    ConversationDetail,
    ConversationList,
    ConversationOut,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/conversations", dependencies=[Depends(require_api_key)])
ConversationId = Path(pattern=ID_PATTERN)
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _store(request: Request) -> ConversationStore:
    return request.app.state.conversations


def _find(request: Request, conversation_id: str) -> Conversation:
    """The caller's conversation; 404 for one that does not exist or is someone else's (the same answer)."""
    conversation = _store(request).get(owner_of(request), conversation_id)
    if conversation is None:
        raise ApiError(404, "conversation_not_found", f"no conversation {conversation_id!r} here")
    authorize_domain(request, conversation.domain)  # a key narrowed to other domains since it was made
    return conversation


@router.post("", response_model=ConversationOut)
def create(body: ConversationCreate, request: Request) -> dict[str, Any]:
    served_domain(request, body.domain)
    try:
        conversation = _store(request).create(owner_of(request), body.domain, body.title)
    except ConversationLimit as err:
        raise ApiError(409, "limit_reached", str(err)) from err
    return conversation.summary()


@router.get("", response_model=ConversationList)
def listing(request: Request) -> dict[str, Any]:
    """The caller's conversations, the most recently updated first, each with its number of turns."""
    conversations = _store(request).list(owner_of(request))
    mine = set(allowed_domains(request, sorted({c.domain for c in conversations})))
    return {"conversations": [c.summary() for c in conversations if c.domain in mine]}


@router.get("/{conversation_id}", response_model=ConversationDetail)
def detail(request: Request, conversation_id: str = ConversationId) -> dict[str, Any]:
    conversation = _find(request, conversation_id)
    turns = _store(request).turns(owner_of(request), conversation_id) or []
    return conversation.summary() | {"turns": [{"question": t.question, "answer": t.answer, "created": t.created}
                                               for t in turns]}


@router.delete("/{conversation_id}", status_code=204)
def delete(request: Request, conversation_id: str = ConversationId) -> Response:
    _find(request, conversation_id)
    _store(request).delete(owner_of(request), conversation_id)
    return Response(status_code=204)


@router.get("/{conversation_id}/export")
def export(request: Request, conversation_id: str = ConversationId,
           format: Literal["md", "docx"] = "md") -> Response:
    """The conversation as a Markdown or Word file (questions, answers, numbered sources with their passages)."""
    conversation = _find(request, conversation_id)
    turns = _store(request).turns(owner_of(request), conversation_id) or []
    headers = {"Content-Disposition": f'attachment; filename="dossier-conversation-{conversation.id}.{format}"'}
    if format == "docx":
        return Response(docx_export(conversation, turns), media_type=DOCX_TYPE, headers=headers)
    return Response(markdown_export(conversation, turns), media_type="text/markdown; charset=utf-8",
                    headers=headers)


@dataclass(frozen=True, slots=True)
class TurnRecorder:
    """Appends one answered question to its conversation, once the answer exists."""

    store: ConversationStore
    owner: str
    conversation_id: str
    question: str

    def record(self, answer: dict[str, Any]) -> None:
        try:
            if not self.store.append(self.owner, self.conversation_id, self.question, answer):
                log.info("conversation %s was deleted while answering; the turn is not kept", self.conversation_id)
        except ConversationLimit as err:  # filled by a concurrent ask since the check: the answer still goes out
            log.warning("turn not kept: %s", err)


async def turn_recorder(request: Request, body: AskRequest) -> TurnRecorder | None:
    """For an ask naming a conversation: 404 when it is not the caller's, 400 when it is another domain's, 409
    when it is full, all before any answering; else the recorder of this turn."""
    if body.conversation_id is None:
        return None
    conversation = await run_in_threadpool(_find, request, body.conversation_id)
    if conversation.domain != body.domain:
        raise ApiError(400, "bad_request", f"conversation {conversation.id} is in domain {conversation.domain!r}, "
                       f"not {body.domain!r}")
    if conversation.turns >= MAX_TURNS:
        raise ApiError(409, "limit_reached", f"conversation {conversation.id} has {MAX_TURNS} turns, the most "
                       "kept; start a new one")
    return TurnRecorder(_store(request), owner_of(request), conversation.id, body.question)
