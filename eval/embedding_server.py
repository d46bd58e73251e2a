"""The domain's embedder behind an OpenAI-compatible `/v1/embeddings` on 127.0.0.1, for a judge that needs
embeddings (RAGAS answer relevancy compares the question with questions generated from the answer). Standard
library HTTP, one thread; started and stopped by the run that needs it.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from core.protocols import Embedder

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 << 20


class EmbeddingServer:
    """`with EmbeddingServer(embedder) as server: server.base_url` — serves until the block ends."""

    def __init__(self, embedder: Embedder, model: str = "dossier-embedder") -> None:
        self.embedder = embedder
        self.model = model
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(texts, role="query").tolist()

    def __enter__(self) -> EmbeddingServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="embedding-server", daemon=True)
        self._thread.start()
        log.info("embedding server for %s on %s", self.embedder.name, self.base_url)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def _handler(server: EmbeddingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            log.debug(format, *args)

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") == "/v1/models":
                self._reply(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
            else:
                self._reply(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") != "/v1/embeddings":
                return self._reply(404, {"error": {"message": f"no route {self.path}"}})
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                return self._reply(413, {"error": {"message": "body too large"}})
            try:
                texts = _texts(json.loads(self.rfile.read(length) or b"{}"))
            except ValueError as err:
                return self._reply(400, {"error": {"message": str(err)}})
            vectors = server.embed(texts)
            data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
            self._reply(200, {"object": "list", "model": server.model, "data": data,
                              "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    return Handler


def _texts(body: Any) -> list[str]:
    """The request's `input`: a string or a list of strings (token-id arrays are refused: send text)."""
    value = body.get("input") if isinstance(body, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise ValueError("input: a string or a list of strings is required (token ids are not accepted)")
