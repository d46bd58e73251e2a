"""What routes share: the pipelines built in the lifespan (on `app.state`), a 503 for a domain still being
prepared, and SSE framing."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import Request

from api.auth import authorize_domain
from api.errors import ApiError, error_body
from api.preparation import Preparer, retry_after_s
from api.schemas import Turn
from core.errors import DossierError
from core.protocols import Message
from rag.pipeline import RagPipeline

MODEL_PREFIX = "dossier-"
log = logging.getLogger(__name__)


def pipeline_for(request: Request, domain: str) -> RagPipeline:
    """The domain's pipeline; 403 when the request's key may not use it, 503 (with Retry-After while it is being
    prepared) until it is ready, 404 for a domain that is not served here."""
    authorize_domain(request, domain)
    pipelines: dict[str, RagPipeline] = request.app.state.pipelines
    if domain in pipelines:
        return pipelines[domain]
    preparation: Preparer = request.app.state.preparation
    if domain not in preparation.domains:
        served = ", ".join(sorted(preparation.domains)) or "none"
        raise ApiError(404, "unknown_domain", f"domain {domain!r} is not served here; served: {served}")
    status = preparation.describe(domain)
    if status["state"] == "failed":
        raise ApiError(503, "domain_failed", f"domain {domain}: {status['reason']}")
    headers = {"Retry-After": str(retry_after_s(status["eta_s"]))}
    raise ApiError(503, "domain_not_ready", f"domain {domain}: {status['reason']}", headers)


def history_messages(turns: Iterable[Turn]) -> tuple[Message, ...]:
    return tuple(Message(t.role, t.content) for t in turns)


def sse(data: dict[str, Any] | str) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n"


def sse_guard(events: Iterator[str], deadline_s: float | None = None) -> Iterator[str]:
    """Once a stream has started, an error can only be reported in-band: as a final `error` event. So is a missed
    deadline, checked as each event is sent (a generator that stalls is caught at its next event)."""
    ends = time.monotonic() + deadline_s if deadline_s else None
    try:
        for event in events:
            yield event
            if ends is not None and time.monotonic() > ends:
                log.warning("a stream missed its %g s deadline and was ended", deadline_s)
                yield sse(error_body("deadline_exceeded", f"the answer stopped at this server's {deadline_s:g} s "
                                     "deadline"))
                return
    except DossierError as err:
        yield sse(error_body("backend_unavailable", str(err)))
    except Exception as err:  # the status line is gone: tell the client in the stream, log the rest
        log.exception("stream failed")
        yield sse(error_body("internal_error", f"{type(err).__name__}: the answer stopped"))
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()  # a generator: its pipeline stream (and the backend's) stop now, not when collected
