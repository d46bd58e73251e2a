"""Every error leaves the API as JSON: {"error": {"code", "reason", "message"}} ("message" repeats the reason
for OpenAI clients, which read that key)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.schemas import MAX_BODY_BYTES
from core.errors import DossierError, RequestError

log = logging.getLogger(__name__)

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              413: "too_large", 429: "rate_limited", 504: "deadline_exceeded"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason, self.headers = status, code, reason, headers


def error_body(code: str, reason: str) -> dict[str, Any]:
    return {"error": {"code": code, "reason": reason, "message": reason}}


def error_response(status: int, code: str, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, reason), status_code=status, headers=headers)


def validation_reason(err: RequestValidationError) -> tuple[int, str, str]:
    problems = err.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        return 400, "invalid_json", "the request body is not valid JSON"
    parts = []
    for p in problems[:5]:
        where = ".".join(str(x) for x in p.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {p.get('msg', 'invalid')}")
    return 422, "invalid_request", "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, err: ApiError) -> JSONResponse:
        return error_response(err.status, err.code, err.reason, err.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return error_response(*validation_reason(err))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return error_response(err.status_code, HTTP_CODES.get(err.status_code, "http_error"), str(err.detail))

    @app.exception_handler(RequestError)
    async def _request(_: Request, err: RequestError) -> JSONResponse:
        return error_response(400, "bad_request", str(err))

    @app.exception_handler(DossierError)
    async def _dossier(_: Request, err: DossierError) -> JSONResponse:
        log.warning("request failed: %s", err)
        return error_response(503, "backend_unavailable", str(err))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", f"{type(err).__name__}: the server could not answer")


class BodyLimitMiddleware:
    """The API's one body limit (`Limits.max_body_bytes`): 413 before reading a body whose Content-Length is over
    it; a chunked body (no Content-Length) is read here up to the limit, 413 past it, and only then handed on."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length")
        response: JSONResponse | None = None
        if length is not None and not length.isdigit():
            response = error_response(400, "bad_request", "bad Content-Length")
        elif length is not None and int(length) > self.limit:
            response = self._too_large()
        elif length is None and b"transfer-encoding" in headers:
            buffered = await self._buffered(receive)
            response, receive = (self._too_large(), receive) if buffered is None else (None, buffered)
        await (response or self.app)(scope, receive, send)

    def _too_large(self) -> JSONResponse:
        return error_response(413, "too_large", f"request body over {self.limit} bytes")

    async def _buffered(self, receive: Receive) -> Receive | None:
        """The whole body read (a receive that replays it, then passes on), or None once it is over the limit."""
        parts: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client left: the app sees the disconnect
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > self.limit:
                return None
            more = message.get("more_body", False)
        pending = [{"type": "http.request", "body": b"".join(parts), "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        return replay
