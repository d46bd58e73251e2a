"""Pydantic request / response models of the REST API, with the limits that keep one request from hurting
the service. They live at the edge only: inside, the pipeline speaks `core.records`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_QUESTION_CHARS = 4_000
MAX_TURN_CHARS = 16_000  # an assistant turn in the history may be long
MAX_ANSWER_CHARS = 20_000
MAX_HISTORY_TURNS = 20
MAX_K = 50
MAX_BODY_BYTES = 512 * 1024  # the largest legitimate body (20 long turns) stays well under this

FilterValue = str | int | float | bool


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TURN_CHARS)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    domain: str = Field(min_length=1, max_length=64)


class AskRequest(_Request):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    history: list[Turn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)
    k: int | None = Field(default=None, ge=1, le=MAX_K)
    filters: dict[str, FilterValue] | None = Field(default=None, max_length=16)
    stream: bool = False


class SearchRequest(_Request):
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int | None = Field(default=None, ge=1, le=MAX_K)
    filters: dict[str, FilterValue] | None = Field(default=None, max_length=16)


class FeedbackRequest(_Request):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    answer: str = Field(min_length=1, max_length=MAX_ANSWER_CHARS)
    rating: Literal["up", "down"] | None = None
    preferred: str | None = Field(default=None, min_length=1, max_length=MAX_ANSWER_CHARS)
    history: list[Turn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)

    @model_validator(mode="after")
    def _rated(self) -> FeedbackRequest:
        if self.rating is None and self.preferred is None:
            raise ValueError("give a rating ('up' / 'down') or a preferred answer")
        return self


class CitationOut(BaseModel):
    marker: int
    chunk_id: str
    doc_id: str
    title: str
    start: int
    end: int
    quote: str


class HitOut(BaseModel):
    chunk_id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    score: float
    retriever: str
    stage_scores: dict[str, float]
    metadata: dict[str, Any]


class UnsupportedOut(BaseModel):
    """A cited sentence its passage does not support, and why (rag/support.py)."""

    sentence: str
    marker: int
    reason: str


class AskResponse(BaseModel):
    domain: str
    question: str
    answer: str
    abstained: bool
    abstain_reason: str
    disclaimer: str
    citations: list[CitationOut]
    unsupported: list[UnsupportedOut] = Field(default_factory=list)
    hits: list[HitOut]
    trace: dict[str, Any]


class SearchResponse(BaseModel):
    domain: str
    query: str
    hits: list[HitOut]
    took_ms: float


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str = Field(max_length=MAX_TURN_CHARS)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[ContentPart] = Field(max_length=MAX_TURN_CHARS)

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat-completions request. Sampling fields are accepted and ignored: a domain's generation
    settings are part of its validated configuration. `k` and `filters` are Dossier extras."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, max_length=80)
    messages: list[ChatMessage] = Field(min_length=1, max_length=2 * MAX_HISTORY_TURNS + 2)
    stream: bool = False
    k: int | None = Field(default=None, ge=1, le=MAX_K)
    filters: dict[str, FilterValue] | None = Field(default=None, max_length=16)
