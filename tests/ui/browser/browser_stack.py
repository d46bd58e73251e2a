"""The pieces of the browser tests' stack: where things are, and a child process that is up when its URL answers."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CHROMIUM = os.environ.get("DOSSIER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "browser"
# Chromium as root in a closed network: no sandbox (root), and none of its background calls out (they fail here)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage"]
STARTUP_S = 300.0  # the API server builds its index first: ~15 s alone, minutes on a loaded 2-core machine
VIEWPORT = {"width": 1400, "height": 1000}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(name: str, argv: list[str], ready_url: str, env: dict[str, str]) -> Iterator[None]:
    """A child process, up once `ready_url` answers 200, stopped on exit; its output goes to `<name>.log` among
    the artifacts (the first thing to read when a browser test fails)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"{name}.log"
    with log_path.open("w") as log, subprocess.Popen(argv, cwd=REPO, env=env, stdout=log,
                                                     stderr=subprocess.STDOUT) as proc:
        try:
            wait_ready(proc, ready_url, f"{name} (log: {log_path})")
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()  # Popen's own exit then reaps it


def wait_ready(proc: subprocess.Popen, url: str, what: str) -> None:
    deadline = time.monotonic() + STARTUP_S
    while proc.poll() is None:
        with suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready in {STARTUP_S:.0f} s")
        time.sleep(0.3)
    raise RuntimeError(f"{what} exited with {proc.returncode}")


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", **extra}
