"""Limits that keep one caller from hurting the service: requests a minute per key (token buckets in memory;
an anonymous caller is bucketed by client address), the request body size (enforced by
`api.errors.BodyLimitMiddleware`, the one place) and a deadline for an answer (/v1/ask, /v1/chat/completions)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from api.errors import ApiError
from api.schemas import MAX_BODY_BYTES

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVE_REQUESTS_PER_MINUTE = 120  # `dossier serve`'s default: a person asks far less, a script is slowed
ANSWER_DEADLINE_S = 300.0  # a long CPU answer (512 new tokens at ~4 tokens/s) still fits


@dataclass(frozen=True)
class Limits:
    """`requests_per_minute` per key (or anonymous client address), 0: none (create_app's default, for tests and
    benches; `dossier serve` sets SERVE_REQUESTS_PER_MINUTE); `burst`: requests at once (None: a minute's worth);
    `answer_deadline_s` None or 0: none."""

    requests_per_minute: float = 0.0
    burst: int | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    answer_deadline_s: float | None = ANSWER_DEADLINE_S

    def __post_init__(self) -> None:
        if self.requests_per_minute < 0 or (self.burst is not None and self.burst < 1):
            raise ValueError("requests_per_minute must be >= 0 and burst >= 1")
        if self.max_body_bytes < 1 or (self.answer_deadline_s or 0) < 0:
            raise ValueError("max_body_bytes must be >= 1 and answer_deadline_s >= 0")


class RateLimiter:
    """Token buckets: each caller holds up to `burst` tokens, refilled at `per_minute` / 60 a second; a request
    takes one. Buckets live in memory (a restart forgets them) and full ones are dropped past `max_buckets`."""

    def __init__(self, per_minute: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic,
                 max_buckets: int = 10_000) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0  # tokens a second
        self.capacity = float(burst or max(1, round(per_minute)))
        self.clock, self.max_buckets = clock, max_buckets
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, caller: str) -> float:
        """0 when `caller` may go on (a token is taken), else the seconds until a token is back."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(caller, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[caller] = (tokens - 1, now)
                self._prune(now)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (1 - tokens) / self.rate

    def describe(self) -> str:
        return f"its limit of {self.per_minute:g} requests a minute ({self.capacity:g} at once)"

    def _prune(self, now: float) -> None:
        if len(self._buckets) > self.max_buckets:
            refill_s = self.capacity / self.rate  # after this long untouched, a bucket is full: forgetting is free
            self._buckets = {c: b for c, b in self._buckets.items() if now - b[1] < refill_s}


async def within_deadline(seconds: float | None, call: Callable[[], T]) -> T:
    """`call()` in a worker thread; 504 when it has not returned within `seconds`. A Python thread cannot be
    stopped: the abandoned call runs to its end (generation is bounded by max_new_tokens) and its result is
    dropped, outside the thread pool's count, so a flood of slow answers is held back by the rate limit."""
    if not seconds:
        return await anyio.to_thread.run_sync(call)
    with anyio.move_on_after(seconds) as scope:
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    assert scope.cancelled_caught  # the only way here: returning above leaves the function
    log.warning("an answer missed its %g s deadline; its worker thread runs on and its result is dropped", seconds)
    raise ApiError(504, "deadline_exceeded",
                   f"no answer within {seconds:g} s, this server's answer deadline; ask again, or ask it shorter")
