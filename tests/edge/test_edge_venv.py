"""The bundle as a user gets it: the .tar.gz unpacked into a fresh virtual environment without torch, installed
offline from the edge wheelhouse (`make edge-wheels`), then `python -m edge ask` and `python -m edge serve` on
127.0.0.1: a cited answer, and an abstention, from a process that has never seen the project. Skipped where the
wheelhouse is not built."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
from api_support import OUT_OF_DOMAIN, needs_minilm
from edge_support import QUESTION

from core.paths import cache_dir

pytestmark = needs_minilm  # ~45 s here (the venv install is most of it): in the default suite

WHEELHOUSE = cache_dir() / "wheels" / "edge"


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not any(WHEELHOUSE.glob("llama_cpp_python-*.whl")):
        pytest.skip(f"no edge wheelhouse at {WHEELHOUSE}: run `make edge-wheels`")
    venv = tmp_path_factory.mktemp("edge-venv") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)  # the interpreter, not the project's venv
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    requirements = Path(__file__).resolve().parents[2] / "edge" / "requirements.txt"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(WHEELHOUSE), "-r",
                    str(requirements)], check=True, timeout=900)
    return python


def _unpacked(edge_bundle, where: Path) -> Path:
    folder, archive = edge_bundle
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="data")
    return where / folder.name


def _env(bundle: Path, home: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(bundle / "runner"), "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def test_the_venv_has_no_torch(venv_python: Path) -> None:
    code = "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('torch', 'transformers')))"
    assert subprocess.run([str(venv_python), "-c", code], timeout=60).returncode == 0


def test_ask_answers_with_a_citation_from_the_unpacked_archive(edge_bundle, venv_python, tmp_path) -> None:
    bundle = _unpacked(edge_bundle, tmp_path)
    done = subprocess.run([str(venv_python), "-m", "edge", "ask", str(bundle), QUESTION, "--json"], cwd=tmp_path,
                          env=_env(bundle, tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert not answer["abstained"] and "第二百三十二条" in answer["citations"][0]["title"]
    assert answer["trace"]["citations"]["precision"] == 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def test_serve_answers_ask_and_chat_completions(edge_bundle, venv_python, tmp_path) -> None:
    bundle, port = _unpacked(edge_bundle, tmp_path), _free_port()
    server = subprocess.Popen([str(venv_python), "-m", "edge", "serve", str(bundle), "--port", str(port)],
                              cwd=tmp_path, env=_env(bundle, tmp_path), stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read()[-3000:] if server.stderr else ""
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        abstained = _post(f"{base}/v1/ask", {"question": OUT_OF_DOMAIN[0]})
        assert abstained["abstained"] and not abstained["citations"]
        chat = _post(f"{base}/v1/chat/completions",
                     {"model": "dossier-legal", "messages": [{"role": "user", "content": QUESTION}]})
        assert chat["citations"] and "第二百三十二条" in chat["citations"][0]["title"]
        assert chat["choices"][0]["message"]["content"].startswith("故意杀人的")
    finally:
        server.terminate()
        server.wait(timeout=30)
