"""The body limits of the API: every route keeps `BodyLimitMiddleware`'s (512 KiB by default); the upload route
(POST /v1/collections/{domain}/files) gets the upload cap instead, enforced the same two ways without holding the
body in memory. A Content-Length over the cap is refused with 413 before a byte is read; a body without one is
counted as the route reads it (Starlette spools a multipart file to disk past 1 MiB) and refused at the byte that
crosses the cap."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, BodyLimitMiddleware, error_response
from ingest.limits import size_text

UPLOAD_ROUTE = re.compile(r"/v1/collections/[^/]+/files")
MULTIPART_SLACK = 64 * 1024  # the boundary lines and part headers around the file itself


class UploadTooLarge(ApiError):
    def __init__(self, cap: int) -> None:
        super().__init__(413, "too_large", f"the file is over this server's {size_text(cap)} upload limit")


class BodyLimits:
    """`BodyLimitMiddleware(limit)` for every request but an upload's, which may carry `upload_cap` bytes of file."""

    def __init__(self, app: ASGIApp, limit: int, upload_cap: int) -> None:
        self.app = app
        self.plain = BodyLimitMiddleware(app, limit)
        self.upload_cap = upload_cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not UPLOAD_ROUTE.fullmatch(scope["path"]):
            await self.plain(scope, receive, send)
            return
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and not length.isdigit():
            await error_response(400, "bad_request", "bad Content-Length")(scope, receive, send)
        elif length is not None and int(length) > self.upload_cap + MULTIPART_SLACK:
            err = UploadTooLarge(self.upload_cap)
            await error_response(err.status, err.code, err.reason)(scope, receive, send)
        else:
            await self.app(scope, self._counted(receive), send)

    def _counted(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b"")) if message["type"] == "http.request" else 0
            if seen > self.upload_cap + MULTIPART_SLACK:
                raise UploadTooLarge(self.upload_cap)  # raised inside the route's form parsing: its handler says 413
            return message

        return counted
