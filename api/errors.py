"""Every error leaves the API as JSON: {"error": {"code", "reason", "message"}} ("message" repeats the reason
for OpenAI clients, which read that key)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from api.schemas import MAX_BODY_BYTES
from core.errors import DossierError, RequestError

log = logging.getLogger(__name__)

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


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
    """413 before reading a body whose Content-Length is over the limit (pydantic's field limits catch the
    rest, e.g. chunked bodies)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or ()).get(b"content-length", b"0")
            if not length.isdigit() or int(length) > self.limit:
                reason = f"request body over {self.limit} bytes" if length.isdigit() else "bad Content-Length"
                status = 413 if length.isdigit() else 400
                response = error_response(status, "too_large" if status == 413 else "bad_request", reason)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
