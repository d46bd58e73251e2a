"""Replies kept per (generator, generation parameters, prompt), so an answer run resumes after a stop and a re-run
or a larger --limit only generates what is new. Also the retriever that hides documents from one question.

The cache is a JSONL file of {"key", "reply"} rows, appended and flushed as each reply is made: a killed run loses
at most the reply in progress. A greedy reply is a function of its key; sampled replies are not cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.protocols import GenerationParams, Generator, Message, Retriever
from core.records import Retrieval

log = logging.getLogger(__name__)


def reply_key(generator: str, params: GenerationParams, messages: Sequence[Message]) -> str:
    payload = json.dumps([generator, asdict(params), [(m.role, m.content) for m in messages]], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class CachingGenerator:
    """A `Generator` that answers from `path` when it can and appends what it generates."""

    def __init__(self, inner: Generator, path: Path, identity: str = "") -> None:
        self.inner = inner
        self.name = inner.name
        self.identity = identity or inner.name  # what the key names: a model's files, not only its path
        self.path = path
        self.hits = self.misses = 0
        self._lock = threading.Lock()
        self._replies: dict[str, str] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self._replies[row["key"]] = row["reply"]
                except (json.JSONDecodeError, KeyError):
                    log.warning("%s: a broken cache line was skipped (a killed run's last write)", path)

    def load(self) -> CachingGenerator:
        self.inner.load()
        return self

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        if params.temperature > 0:
            return self.inner.generate(messages, params)
        key = reply_key(self.identity, params, messages)
        if key in self._replies:
            self.hits += 1
            return self._replies[key]
        reply = self.inner.generate(messages, params)
        self.misses += 1
        with self._lock:
            self._replies[key] = reply
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "reply": reply}, ensure_ascii=False) + "\n")
        return reply

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        yield self.generate(messages, params)


class HidingRetriever:
    """A `Retriever` that never returns the documents in `hidden` (over-fetching so `k` hits remain)."""

    def __init__(self, inner: Retriever, hidden: Sequence[str], default_k: int, overfetch: int = 3) -> None:
        self.inner = inner
        self.hidden = frozenset(hidden)
        self.default_k = default_k  # the pipeline's final_k, for a call that names no k
        self.overfetch = overfetch

    def retrieve(self, queries: Sequence[str], k: int | None = None,
                 filters: Mapping[str, Any] | None = None) -> list[Retrieval]:
        wanted = k or self.default_k
        found = self.inner.retrieve(queries, wanted * self.overfetch + len(self.hidden), filters)
        return [Retrieval(r.query, tuple(h for h in r.hits if h.chunk.doc_id not in self.hidden)[:wanted],
                          r.timings_ms) for r in found]


class NoRetriever:
    """The `Retriever` of a closed-book run: it finds nothing (and the run never asks it)."""

    def retrieve(self, queries: Sequence[str], k: int | None = None,
                 filters: Mapping[str, Any] | None = None) -> list[Retrieval]:
        return [Retrieval(q, ()) for q in queries]
