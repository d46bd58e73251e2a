"""The audit log: who asked which domain when. One JSON line per /v1 request, refusals included:

{"time": "2025-01-31T08:00:00.123+00:00", "key": "Xq3v9KfA", "client": "10.0.0.7", "method": "POST",
 "route": "/v1/ask", "domain": "legal", "status": 200, "latency_ms": 812.4}

`key` is the key's public id (null: anonymous), never the key; `question` (the question, search query or last
user message) is added only when the log is configured to hold questions. The file is created 0600 and rotated
by size (`max_bytes`, `backups` old files: audit.log.1, .2, ...).
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_ROUTE_CHARS = 200  # an unmatched path is the client's text: kept, but short


class _PrivateRotatingFileHandler(RotatingFileHandler):
    """A RotatingFileHandler whose files (the first and each one after a rotation) are readable by the owner only:
    the log names clients and may hold questions."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding)


class AuditLog:
    """Appends audit lines to `path`; nothing is opened before the first line (constructing it is free)."""

    def __init__(self, path: Path, *, questions: bool = False, max_bytes: int = 10 << 20, backups: int = 5) -> None:
        self.path, self.questions = Path(path), questions
        self._handler = _PrivateRotatingFileHandler(self.path, maxBytes=max_bytes, backupCount=backups,
                                                    encoding="utf-8", delay=True)
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def write(self, entry: dict[str, Any]) -> None:
        if not self.questions:
            entry = {k: v for k, v in entry.items() if k != "question"}
        line = json.dumps(entry, ensure_ascii=False)
        if self._handler.stream is None:  # the first line, or the first after close()
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handler.handle(logging.makeLogRecord({"msg": line, "levelno": logging.INFO, "levelname": "INFO"}))

    def close(self) -> None:
        self._handler.close()


def note_question(request: Request, text: str) -> None:
    """What the request asked, for the audit log (written only when it keeps questions)."""
    request.state.question = text


class AuditMiddleware:
    """Writes one line per /v1 request once its response has ended (a stream counts whole). The key id, domain
    and question come from `request.state`, set by the auth dependency and the routes."""

    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app, self.audit = app, audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1"):
            await self.app(scope, receive, send)
            return
        t0, response = time.perf_counter(), ResponseStatus(send)
        try:
            await self.app(scope, receive, response.send)
        finally:
            self.audit.write(_entry(scope, response.status, (time.perf_counter() - t0) * 1000))


class ResponseStatus:
    """Passes a response on and keeps its status: 500 until it starts (an exception ended the request)."""

    def __init__(self, send: Send) -> None:
        self._send, self.status = send, 500

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)


def _entry(scope: Scope, status: int, latency_ms: float) -> dict[str, Any]:
    state = scope.get("state") or {}
    principal = state.get("principal")
    client = scope.get("client")
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "key": getattr(principal, "id", None),
        "client": client[0] if client else None,
        "method": scope["method"],
        "route": getattr(scope.get("route"), "path", None) or scope["path"][:MAX_ROUTE_CHARS],
        "domain": state.get("domain"),
        "status": status,
        "latency_ms": round(latency_ms, 1),
        "question": state.get("question"),
    }
