"""`RagPipeline`: the product. question (+ history) -> rewrite -> retrieve (+ rerank) -> abstain? -> prompt ->
generate -> cite & verify -> `Answer`, with the rewrite, the evidence and per-stage timings in `answer.trace`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from core.protocols import GenerationParams, Generator, Message, Retriever
from core.records import Answer, Hit, Retrieval
from domains.config import DomainConfig
from rag import prompting
from rag.abstention import (
    ECHO_ONLY_REASON,
    EMPTY_REPLY_REASON,
    MODEL_REFUSAL_REASON,
    AbstentionDecision,
    decide,
    empty_reply,
    empty_so_far,
    model_refused,
)
from rag.citation_repair import repoint_markers
from rag.citations import cite
from rag.marker_quote import quoted_reply
from rag.paste import paste_trace
from rag.question_echo import strip_question_echoes

log = logging.getLogger(__name__)

REWRITE_MAX_TOKENS = 64


@dataclass(frozen=True, slots=True)
class AnswerChunk:
    """One streamed piece. The first, when the question is answered, carries the `evidence`: the passages in the
    prompt, in their marker order ([1] first), known before the generator reads a token, so a client can show them
    while the prompt is read (seconds on a CPU). Then text as it is generated; the last carries the cited `Answer`."""

    delta: str = ""
    answer: Answer | None = None
    evidence: tuple[Hit, ...] = ()


class StageTimer:
    """Wall time per stage, in milliseconds."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - t0) * 1000, 2)

    def mark(self, name: str) -> None:
        self.ms[name] = round((time.perf_counter() - self.started) * 1000, 2)


@dataclass(frozen=True, slots=True)
class _Prepared:
    question: str
    query: str  # standalone query used for retrieval
    hits: tuple[Hit, ...]
    decision: AbstentionDecision
    evidence: prompting.Evidence
    messages: tuple[Message, ...]


def generation_params(cfg: DomainConfig) -> GenerationParams:
    """The sampling settings an answer is generated with (the domain's [generation])."""
    return GenerationParams(max_new_tokens=cfg.generation.max_new_tokens, temperature=cfg.generation.temperature,
                            repetition_penalty=cfg.generation.repetition_penalty)


class RagPipeline:
    def __init__(self, cfg: DomainConfig, retriever: Retriever, generator: Generator) -> None:
        self.cfg = cfg
        self.retriever = retriever
        self.generator = generator
        self.params = generation_params(cfg)

    @property
    def domain(self) -> str:
        return self.cfg.name

    def search(self, query: str, k: int | None = None, filters: Mapping[str, Any] | None = None) -> list[Hit]:
        return list(self._retrieve(query, k, filters).hits)

    def _retrieve(self, query: str, k: int | None, filters: Mapping[str, Any] | None) -> Retrieval:
        return self.retriever.retrieve([query], k or self.cfg.retrieval.final_k, filters)[0]

    def rewrite(self, question: str, history: Sequence[Message]) -> str:
        """A follow-up rewritten into a standalone query with the domain's `rewrite` prompt."""
        if not any(m.role != "system" for m in history):
            return question
        messages = prompting.rewrite_messages(self.cfg.prompts, question, history)
        params = GenerationParams(max_new_tokens=REWRITE_MAX_TOKENS, temperature=0.0, stop=("\n\n",),
                                  repetition_penalty=self.params.repetition_penalty)
        return prompting.clean_rewrite(self.generator.generate(messages, params), fallback=question)

    def answer(
        self, question: str, history: Sequence[Message] = (), *, k: int | None = None, filters: Mapping | None = None
    ) -> Answer:
        timer = StageTimer()
        prep = self._prepare(question, history, k, filters, timer)
        if prep.decision.abstain:
            return self._abstained(prep, timer)
        with timer.stage("generate"):
            generated = self.generator.generate(prep.messages, self.params)
        return self._finish(prep, generated, timer)

    def prompt(
        self, question: str, history: Sequence[Message] = (), *, k: int | None = None, filters: Mapping | None = None
    ) -> tuple[Message, ...]:
        """The messages `answer` sends the generator for this question (retrieval and, for a follow-up, the rewrite
        run; nothing is generated for the answer). Feedback records keep it, so DPO / KTO train on this prompt."""
        return self._prepare(question, history, k, filters, StageTimer()).messages

    def stream(
        self, question: str, history: Sequence[Message] = (), *, k: int | None = None, filters: Mapping | None = None
    ) -> Iterator[AnswerChunk]:
        """The evidence (unless it abstains), deltas of the raw generated text, then one chunk with the cited answer
        (whose text has invalid markers removed, so it may differ slightly from the concatenated deltas)."""
        timer = StageTimer()
        prep = self._prepare(question, history, k, filters, timer)
        if prep.decision.abstain:
            answer = self._abstained(prep, timer)
            yield AnswerChunk(delta=answer.text)
            yield AnswerChunk(answer=answer)
            return
        yield AnswerChunk(evidence=tuple(prep.evidence.hits))
        pieces: list[str] = []
        t0 = time.perf_counter()
        yield from _shown(self.generator.stream(prep.messages, self.params), pieces, timer)
        timer.ms["generate"] = round((time.perf_counter() - t0) * 1000, 2)
        answer = self._finish(prep, "".join(pieces), timer)
        if empty_so_far("".join(pieces)):  # nothing was shown: the abstention, or the quote, is the whole reply
            yield AnswerChunk(delta=answer.text)
        elif answer.abstained and answer.abstain_reason != MODEL_REFUSAL_REASON:  # a question echo was shown
            yield AnswerChunk(delta="\n\n" + answer.text)
        yield AnswerChunk(answer=answer)

    def _prepare(
        self, question: str, history: Sequence[Message], k: int | None, filters: Mapping | None, timer: StageTimer
    ) -> _Prepared:
        with timer.stage("rewrite"):
            query = self.rewrite(question, history)
        with timer.stage("retrieve"):
            found = self._retrieve(query, k, filters)
        timer.ms.update({f"retrieve.{stage}": round(ms, 2) for stage, ms in found.timings_ms.items()})
        hits = found.hits
        decision = decide(hits, self.cfg.abstention, self.cfg.retrieval.fusion)
        evidence = prompting.evidence_for(self.cfg.generation, hits, query)
        messages = tuple(prompting.answer_messages(self.cfg.prompts, evidence, query, history))
        return _Prepared(question, query, hits, decision, evidence, messages)

    def _trace(self, prep: _Prepared, timer: StageTimer, **extra: Any) -> dict[str, Any]:
        timer.mark("total")
        return {
            "domain": self.domain,
            "query": prep.query,
            "rewrite": {"from": prep.question, "to": prep.query} if prep.query != prep.question else None,
            "abstention": prep.decision.trace(),
            "evidence": [h.chunk.chunk_id for h in prep.evidence.hits],
            "generator": self.generator.name,
            "prompt_chars": sum(len(m.content) for m in prep.messages),
            "timings_ms": dict(timer.ms),
            **extra,
        }

    def _abstained(self, prep: _Prepared, timer: StageTimer, reason: str = "", generated: str | None = None) -> Answer:
        """The abstention answer: below the threshold (nothing generated), or when the generator declined
        (`generated` is its reply, kept in the trace)."""
        reason = reason or prep.decision.reason
        log.info("abstained on %r: %s", prep.question[:80], reason)
        extra = {"generated": generated} if generated is not None else {}
        return Answer(
            question=prep.question,
            text=self.cfg.prompts.abstain,
            hits=prep.hits,
            abstained=True,
            abstain_reason=reason,
            disclaimer=self.cfg.disclaimer,
            trace=self._trace(prep, timer, citations=None, **extra),
        )

    def _finish(self, prep: _Prepared, generated: str, timer: StageTimer) -> Answer:
        if model_refused(generated, self.cfg.prompts):
            return self._abstained(prep, timer, MODEL_REFUSAL_REASON, generated)
        quoted: dict[str, str] = {}
        if empty_reply(generated):
            quote = quoted_reply(generated, prep.evidence, prep.query) if self.cfg.generation.quote_marker_replies \
                else None
            if quote is None:
                return self._abstained(prep, timer, EMPTY_REPLY_REASON, generated)
            quoted, generated = {"quoted_for_reply": generated}, quote  # the trace keeps what the model wrote
        with timer.stage("cite"):
            served, moves = (repoint_markers(generated, prep.evidence) if self.cfg.generation.repoint_markers
                             else (generated, []))
            echoes: list[str] = []
            if self.cfg.generation.strip_question_echoes:
                served, echoes = strip_question_echoes(served, prep.question, prep.evidence)
            report = cite(served, prep.evidence)
            as_generated = cite(generated, prep.evidence).precision if moves or echoes else report.precision
            copied = paste_trace(report.text, prep.evidence)
        if echoes and report.claims == 0:
            return self._abstained(prep, timer, ECHO_ONLY_REASON, generated)
        citations = {**report.trace(), "repointed": [m.trace() for m in moves], "question_echoes": echoes,
                     "precision_as_generated": as_generated, **copied}
        return Answer(
            question=prep.question,
            text=report.text,
            citations=report.citations,
            hits=prep.hits,
            disclaimer=self.cfg.disclaimer,
            trace=self._trace(prep, timer, citations=citations, **quoted),
        )


def _shown(stream: Iterator[str], pieces: list[str], timer: StageTimer) -> Iterator[AnswerChunk]:
    """The deltas of a generator stream, each also kept in `pieces`. While the text so far is citation markers
    alone it is held back: a reply that never says more is abstained on (rag.abstention.empty_reply), and a client
    that concatenates deltas must not have shown its "[1]" before the abstention. The first token is marked when
    the generator yields it, not when it is shown."""
    held = True
    for piece in stream:
        if "first_token" not in timer.ms:
            timer.mark("first_token")
        pieces.append(piece)
        if held:
            if empty_so_far("".join(pieces)):
                continue
            held = False
            yield AnswerChunk(delta="".join(pieces))
            continue
        yield AnswerChunk(delta=piece)
