"""Pydantic request / response models of the REST API, with the limits that keep one request from hurting
the service. They live at the edge only: inside, the pipeline speaks `core.records`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from api.question_text import clean_question

MAX_QUESTION_CHARS = 4_000
MAX_TURN_CHARS = 16_000  # an assistant turn in the history may be long
MAX_ANSWER_CHARS = 20_000
MAX_HISTORY_TURNS = 20
MAX_K = 50
MAX_BODY_BYTES = 512 * 1024  # the largest legitimate body (20 long turns) stays well under this

FilterValue = str | int | float | bool
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # conversation and file ids the server made (uuid4 hex)
MAX_TITLE_CHARS = 200


def _question(text: str) -> str:
    text = clean_question(text).strip()
    if not text:
        raise ValueError("is empty once its invisible characters are removed")
    return text


# What a person typed: a NUL is refused (422), invisible formatting and control characters are removed
# (api/question_text.py), before the retriever, the prompt, the audit log or a feedback record sees them.
Question = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS), AfterValidator(_question)]
TurnText = Annotated[str, Field(max_length=MAX_TURN_CHARS), AfterValidator(clean_question)]


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: TurnText


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    domain: str = Field(min_length=1, max_length=64)


class AskRequest(_Request):
    question: Question
    history: list[Turn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)
    k: int | None = Field(default=None, ge=1, le=MAX_K)
    filters: dict[str, FilterValue] | None = Field(default=None, max_length=16)
    stream: bool = False
    # the caller's conversation (POST /v1/conversations) this turn is appended to, server-side
    conversation_id: str | None = Field(default=None, pattern=ID_PATTERN)
    collection: bool = False  # search the caller's own uploaded documents too (api/collections.py)


class SearchRequest(_Request):
    query: Question
    k: int | None = Field(default=None, ge=1, le=MAX_K)
    filters: dict[str, FilterValue] | None = Field(default=None, max_length=16)
    collection: bool = False


class FeedbackRequest(_Request):
    question: Question
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
    text: TurnText


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[ContentPart] = Field(max_length=MAX_TURN_CHARS)

    @field_validator("content")
    @classmethod
    def _clean(cls, content: str | list[ContentPart]) -> str | list[ContentPart]:
        return clean_question(content) if isinstance(content, str) else content  # parts: cleaned as TurnText

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


class ConversationCreate(_Request):
    title: str = Field(default="", max_length=MAX_TITLE_CHARS)  # "": named by its first question


class ConversationOut(BaseModel):
    id: str
    domain: str
    title: str
    created: str
    updated: str


class ConversationSummary(ConversationOut):
    turns: int


class ConversationList(BaseModel):
    conversations: list[ConversationSummary]


class ConversationTurnOut(BaseModel):
    question: str
    answer: dict[str, Any]  # the /v1/ask response as it was sent
    created: str


class ConversationDetail(ConversationOut):
    turns: list[ConversationTurnOut]


class UploadOut(BaseModel):
    file_id: str
    name: str
    status: Literal["queued"]


class CollectionFileOut(BaseModel):
    file_id: str
    name: str
    status: Literal["queued", "indexing", "ready", "failed"]
    chunks: int
    bytes: int
    created: str
    error: str | None = None
    note: str | None = None  # e.g. a file whose text another file of the collection already holds
    progress: float | None = Field(default=None, ge=0, le=1)


class CollectionOut(BaseModel):
    domain: str
    files: list[CollectionFileOut]
    chunks: int
