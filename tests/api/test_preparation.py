"""Background preparation (api/preparation.py): a real subprocess stands in for `dossier index build` (it writes
real `BuildProgress` files and waits for the test's go-ahead), a real uvicorn server on 127.0.0.1 answers
/readyz, /v1/ask and /v1/domains while a domain is prepared, and the wheel marker is the Makefile's format.
Pipelines are cheap real `RagPipeline`s over protocol fakes: preparation, not answering, is under test here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import ScriptedGenerator, fixed_retriever
from live_server import LiveServer

from api import create_app
from api.preparation import PreparationPlan, Preparer
from core.paths import index_root
from domains import load_domain
from rag.pipeline import RagPipeline
from retrieval.build_progress import BuildProgress, read_progress

QUESTION = {"domain": "legal", "question": "盗窃罪怎么处罚？"}
CHAT = {"model": "dossier-legal", "messages": [{"role": "user", "content": "盗窃罪怎么处罚？"}]}

# `dossier index build` in miniature: progress as the real builder writes it, then an index version, or a failure
STAND_IN = """
import sys, time
from pathlib import Path
from retrieval.build_progress import BuildProgress
root, domain, gate, code = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
print("stand-in build of", domain, flush=True)
progress = BuildProgress(root, domain)
progress.update("embed", 0, 26390)
time.sleep(0.2)
progress.update("embed", 1200, 26390, force=True)
deadline = time.time() + 60
while not gate.exists() and time.time() < deadline:
    time.sleep(0.05)
if code:
    print("RuntimeError: the embedder ran out of memory", flush=True)
    sys.exit(code)
(root / "v0001").mkdir()
(root / "current").write_text("v0001\\n")
progress.finish()
"""


def stand_in(gate: Path, exit_code: int = 0) -> Callable[[str], list[str]]:
    return lambda domain: [sys.executable, "-c", STAND_IN, str(index_root(domain)), domain, str(gate), str(exit_code)]


def fake_pipeline(domain: str) -> RagPipeline:
    return RagPipeline(load_domain(domain), fixed_retriever(()), ScriptedGenerator())


def make_index(root: Path) -> None:
    (root / "v0001").mkdir(parents=True)
    (root / "current").write_text("v0001\n")


def poll(check: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DOSSIER_HOME of this test's own: index roots start empty."""
    monkeypatch.setenv("DOSSIER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def readyz(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=10)


def test_readyz_and_ask_say_what_is_being_prepared_until_ready(home, tmp_path):
    gate, loading = tmp_path / "go", threading.Event()

    def slow_build(domain: str) -> RagPipeline:
        loading.wait(60)
        return fake_pipeline(domain)

    plan = PreparationPlan(index_command=stand_in(gate), poll_s=0.05)
    with LiveServer(create_app(["legal"], build=slow_build, preparation=plan, api_keys=[])) as server:
        def embedding() -> httpx.Response | None:
            r = readyz(server.url)
            index = r.json().get("not_ready", {}).get("legal", {}).get("steps", {}).get("index", {})
            return r if index.get("progress", {}).get("done") == 1200 else None

        r = poll(embedding)
        assert r.status_code == 503
        body = r.json()
        assert body["error"]["code"] == "not_ready" and body["ready"] == []
        assert body["error"]["reason"].startswith("domain legal: index embedding 1200/26390 chunks, ~")
        legal = body["not_ready"]["legal"]
        assert legal["state"] == "preparing" and legal["eta_s"] > 0
        index = legal["steps"]["index"]
        assert index["state"] == "running" and index["log"] == str(index_root("legal") / "build.log")
        assert index["progress"] | {"eta_s": None} == {"stage": "embed", "done": 1200, "total": 26390,
                                                       "eta_s": None, "running": True}
        assert legal["steps"]["wheel"] == {"state": "pending"}  # checked after the index
        assert legal["steps"]["load"] == {"state": "pending", "reason": "models not loaded yet"}

        for path, payload in (("/v1/ask", QUESTION), ("/v1/chat/completions", CHAT)):
            r = httpx.post(server.url + path, json=payload, timeout=10)
            assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 5
            assert r.json()["error"]["code"] == "domain_not_ready"
            assert r.json()["error"]["reason"].startswith("domain legal: index embedding 1200/26390 chunks, ~")
        [domain] = httpx.get(f"{server.url}/v1/domains").json()["domains"]
        assert (domain["name"], domain["ready"], domain["state"]) == ("legal", False, "preparing")
        assert domain["display_name"] and domain["reason"].startswith("index embedding")

        gate.touch()
        r = poll(lambda: (r := readyz(server.url)).json()["not_ready"]["legal"]["steps"]["load"]["state"]
                 == "running" and r)
        assert r.json()["not_ready"]["legal"]["reason"].startswith("loading the models (")
        assert r.json()["not_ready"]["legal"]["steps"]["index"] == {"state": "done", "log": index["log"]}
        loading.set()
        r = poll(lambda: (r := readyz(server.url)).status_code == 200 and r)
        assert r.json() == {"status": "ready", "domains": ["legal"]}
        assert httpx.get(f"{server.url}/v1/domains").json()["domains"][0]["ready"] is True
        assert httpx.post(f"{server.url}/v1/ask", json=QUESTION, timeout=30).status_code == 200
    assert "stand-in build of legal" in Path(index["log"]).read_text()
    assert read_progress(index_root("legal")) is None  # the build finished: its progress file is gone


def test_a_failed_index_build_fails_its_domain_once_and_the_others_answer(home, tmp_path):
    make_index(index_root("medical"))
    gate = tmp_path / "go"
    gate.touch()
    plan = PreparationPlan(index_command=stand_in(gate, exit_code=3), poll_s=0.05)
    app = create_app(["legal", "medical"], build=fake_pipeline, preparation=plan, api_keys=[])
    with LiveServer(app) as server:
        def settled() -> dict | None:
            body = readyz(server.url).json()
            failed = body.get("ready") == ["medical"] and body["not_ready"]["legal"]["state"] == "failed"
            return body if failed else None

        body = poll(settled)
        log_path = index_root("legal") / "build.log"
        assert body["not_ready"]["legal"]["reason"] == (
            "index failed: index build exited with status 3: RuntimeError: the embedder ran out of memory "
            f"(log: {log_path})")
        assert body["error"]["reason"].startswith("domain legal: index failed")
        r = httpx.post(f"{server.url}/v1/ask", json=QUESTION, timeout=10)
        assert r.status_code == 503 and "Retry-After" not in r.headers
        assert r.json()["error"]["code"] == "domain_failed"
        r = httpx.post(f"{server.url}/v1/ask", json=QUESTION | {"domain": "medical"}, timeout=30)
        assert r.status_code == 200, r.text
        time.sleep(0.5)  # ten polls: a failed step is not started again
        assert readyz(server.url).status_code == 503
    assert log_path.read_text().count("stand-in build of legal") == 1


def test_waits_for_the_wheel_build_then_loads(home, tmp_path):
    marker = tmp_path / "building.json"
    wheel_log = str(tmp_path / "build.log")
    marker.write_text(json.dumps({"state": "building", "pid": os.getpid(), "started_at": time.time() - 240,
                                  "expected_s": 690, "log": wheel_log}))
    ready: dict[str, RagPipeline] = {}
    plan = PreparationPlan(wheel_marker=marker, uses_llama_cpp=lambda _: True, wheel_module="json", poll_s=0.05)
    preparer = Preparer(["legal"], fake_pipeline, plan, ready.__setitem__)
    preparer.start()
    try:
        status = poll(lambda: (s := preparer.describe("legal"))["steps"]["wheel"]["state"] == "running" and s)
        assert status["reason"] == "llama.cpp wheel build 4 min of ~12 min; models not loaded yet"
        assert 440 <= status["eta_s"] <= 450
        assert status["steps"]["wheel"]["log"] == wheel_log and status["steps"]["wheel"]["expected_s"] == 690
        assert status["steps"]["index"] == {"state": "skipped"} and not ready
        marker.unlink()  # the Makefile's build is over
        poll(preparer.all_ready)
    finally:
        preparer.stop()
    assert list(ready) == ["legal"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


WHEEL_FAILURES = [
    ("build failed", {"state": "failed", "message": "llama.cpp wheel build failed: see the log"}, "llama_cpp",
     "wheel failed: llama.cpp wheel build failed: see the log (log: {log})"),
    ("builder gone", {"state": "building", "pid": "dead"}, "llama_cpp",
     "wheel failed: the llama.cpp wheel build (pid {pid}) stopped before it finished"),
    ("nothing built", None, "no_such_module_here",
     "wheel failed: no_such_module_here does not import and no wheel build is running"),
]


@pytest.mark.parametrize(("marker", "module", "reason"), [w[1:] for w in WHEEL_FAILURES],
                         ids=[w[0] for w in WHEEL_FAILURES])
def test_a_failed_wheel_build_fails_its_domain(home, tmp_path, marker, module, reason):
    path, pid, log = tmp_path / "building.json", _dead_pid(), str(tmp_path / "build.log")
    if marker is not None:
        path.write_text(json.dumps({"started_at": time.time(), "expected_s": 690, "log": log} | marker
                                   | ({"pid": pid} if marker.get("pid") == "dead" else {})))
    built: list[str] = []
    plan = PreparationPlan(wheel_marker=path, uses_llama_cpp=lambda _: True, wheel_module=module, poll_s=0.05)
    preparer = Preparer(["legal"], lambda d: built.append(d) or fake_pipeline(d), plan, lambda *_: None)
    preparer.prepare_all()
    status = preparer.describe("legal")
    assert status["state"] == "failed" and status["reason"].startswith(reason.format(log=log, pid=pid))
    assert built == [] and status["steps"]["load"]["state"] == "pending"


def test_an_earlier_build_still_running_is_waited_for_not_doubled(home, tmp_path, caplog):
    root = index_root("legal")
    progress = BuildProgress(root, "legal")  # this process stands for a build left running by a killed server
    progress.update("embed", 1200, 26390, force=True)
    launched = tmp_path / "launched"
    plan = PreparationPlan(index_command=lambda _: [sys.executable, "-c", f"open({str(launched)!r}, 'w')"],
                           poll_s=0.05, log_every_s=0.1)
    preparer = Preparer(["legal"], fake_pipeline, plan, lambda *_: None)
    caplog.set_level("INFO", logger="api.preparation")
    preparer.start()
    try:
        status = poll(lambda: (s := preparer.describe("legal"))["steps"]["index"]["state"] == "running" and s)
        assert status["reason"] == "index embedding 1200/26390 chunks; models not loaded yet"
        poll(lambda: "domain legal: index embedding 1200/26390 chunks" in caplog.text)  # the periodic status line
        make_index(root)
        progress.finish()
        poll(preparer.all_ready)
    finally:
        preparer.stop()
    assert not launched.exists()
    assert f"an index build (pid {os.getpid()}) is already running" in caplog.text


def test_stopping_the_server_ends_a_running_build(home, tmp_path):
    plan = PreparationPlan(index_command=stand_in(tmp_path / "never"), poll_s=0.05)
    preparer = Preparer(["legal"], fake_pipeline, plan, lambda *_: None)
    preparer.start()
    try:
        pid = poll(lambda: (read_progress(index_root("legal")) or {}).get("pid"))
    finally:
        preparer.stop()
    progress = read_progress(index_root("legal"))
    assert progress["pid"] == pid and not progress["running"]  # ended; the next build resumes it
    assert preparer.state("legal") == "preparing"  # stopped, not failed
