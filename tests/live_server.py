"""A real uvicorn server on 127.0.0.1 (a free port chosen by the OS), run in a thread and stopped on exit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import uvicorn


class LiveServer:
    def __init__(self, app, startup_timeout_s: float = 300.0, options: Mapping[str, Any] | None = None) -> None:
        """`options`: more `uvicorn.Config` keywords, e.g. `dossier serve`'s (api.http_server.server_options)."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5,
                                **(options or {}))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.startup_timeout_s = startup_timeout_s

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
