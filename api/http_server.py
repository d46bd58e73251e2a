"""How `dossier serve` reads requests off a connection: uvicorn's httptools protocol with two bounds on a request's
head (request line and headers) that uvicorn lacks and that no ASGI middleware can add, since the app sees a request
only once its head is complete.

- time: each request's head must be complete within `HeaderLimits.read_timeout_s` of its first byte (a
  connection's first request: of connecting), else the connection is closed, with a 408 if part of a request had
  arrived. Before, a slowloris trickling a header a byte a second held its connection for as long as it liked.
- size: a head over `HeaderLimits.max_bytes` gets a 431 and a close, with at most that plus one socket read
  (asyncio reads 256 KiB at a time) buffered. Before, an 8 MiB header was buffered whole.

Between requests a keep-alive connection is idle under uvicorn's `timeout_keep_alive`, not under these bounds.
The protocol is pinned to httptools (uvicorn[standard] installs it on every platform), so the bounds cannot vanish
in a silent fallback to h11."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api.errors import error_body

log = logging.getLogger(__name__)

HEAD_READ_TIMEOUT_S = 10.0  # a client sends its head in one packet; 10 s leaves room for a poor mobile link
MAX_HEAD_BYTES = 64 * 1024  # nginx allows 4 x 8 KiB, h11 and Node 16 KiB: large cookies and bearer tokens fit
KEEP_ALIVE_S = 5  # uvicorn's default, stated here so that the whole connection policy reads in one place
REFUSALS = {408: "request_timeout", 431: "headers_too_large"}


@dataclass(frozen=True)
class HeaderLimits:
    """`read_timeout_s`: seconds from a request's first byte to the end of its headers; `max_bytes`: the
    request line and headers together."""

    read_timeout_s: float = HEAD_READ_TIMEOUT_S
    max_bytes: int = MAX_HEAD_BYTES

    def __post_init__(self) -> None:
        if self.read_timeout_s <= 0 or self.max_bytes < 1:
            raise ValueError("the header read timeout must be > 0 seconds and the header size limit >= 1 byte")


def server_options(limits: HeaderLimits | None = None) -> dict[str, Any]:
    """The `uvicorn.run` / `uvicorn.Config` keywords of `dossier serve`'s connection handling; the tests start
    their server with the same ones (tests/reliability/test_hostile_api.py)."""
    bounded = type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": limits or HeaderLimits()})
    return {"http": bounded, "timeout_keep_alive": KEEP_ALIVE_S}


class _HeadRefused(Exception):
    """Raised from a parser callback to stop httptools parsing a request that has been refused."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[HeaderLimits] = HeaderLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None  # set while a head is being read
        self._head_begun = False  # a byte of the request has arrived (else a timeout closes quietly)
        self._head_received = 0  # bytes received while the head is incomplete: bounds what httptools buffers
        self._head_size = 0  # the head as parsed: request target, header names and values

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()  # a connection that never sends a request is dropped too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # refused: what else arrives is not parsed
        if self._head_timer is not None:
            self._head_received += len(data)
        super().data_received(data)
        if self._head_timer is not None and self._head_received > self.limits.max_bytes:
            self._refuse(431, f"the request's headers are over {self.limits.max_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun, self._head_size = True, 0
        if self._head_timer is None:
            self._start_head()  # the next request of a keep-alive connection

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF

    def on_headers_complete(self) -> None:
        self._stop_head()
        if self._head_size > self.limits.max_bytes:  # a head that arrived whole in one read
            self._refuse(431, f"the request's headers are over {self.limits.max_bytes} bytes")
            raise _HeadRefused  # the parser stops here: the request never reaches the app
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():  # after our refusal the parser reports _HeadRefused as an error
            super().send_400_response(msg)

    def _start_head(self) -> None:
        self._head_received = 0
        self._head_timer = self.loop.call_later(self.limits.read_timeout_s, self._head_timed_out)

    def _stop_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._head_begun:
            self.transport.close()  # it never sent a byte: closed quietly, like an idle keep-alive connection
            return
        self._refuse(408, f"the request's headers took over {self.limits.read_timeout_s:g} s")

    def _refuse(self, status: int, reason: str) -> None:
        """An error response and a close; only the close while an earlier (pipelined) response is still going
        out, since an answer now would land inside it."""
        log.warning("%s to %s: %s", status, self.client, reason)
        if self.cycle is None or self.cycle.response_complete:
            body = json.dumps(error_body(REFUSALS[status], reason)).encode()
            self.transport.write(STATUS_LINE[status] + b"content-type: application/json\r\nconnection: close\r\n"
                                 + b"content-length: %d\r\n\r\n" % len(body) + body)
        self.transport.close()
