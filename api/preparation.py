"""Preparing the served domains in the background, so that `dossier serve` listens at once (`make run`).

Each domain takes three steps, in order, in a thread of its own:
  index  its index is missing: `dossier index build --domain D --if-missing` runs as a subprocess in a session of
         its own (a killed server leaves a build that goes on, or that the next build resumes), logging to
         `<index root>/build.log`. One build at a time: each uses every core. A build still running from an
         earlier server (its `build-progress.json`) is waited for, not doubled.
  wheel  it generates with llama.cpp and `make run` is building that wheel in the background (the Makefile keeps
         `<cache>/wheels/building.json` while it runs): wait until the build is over and `llama_cpp` imports.
  load   its `RagPipeline` is built (the models load). One domain at a time, so domains become ready one by one.
A step that fails fails its domain once, with the reason and the log to read; the other domains go on. `describe`
is what /readyz and a not-ready answer say; the log says the same on every change and every `log_every_s`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

from core.errors import DossierError
from core.paths import index_root
from domains.config import DomainConfig
from rag.pipeline import RagPipeline
from retrieval.build_progress import pid_alive

log = logging.getLogger(__name__)

WHEEL_MARKER = "building.json"
BUILD_LOG = "build.log"
STALE_PROGRESS_S = 900.0  # a build silent for 15 min is gone, whatever its (maybe reused) pid says
STAGE_WORDS = {"tokenize": "tokenizing", "embed": "embedding", "write": "writing"}  # retrieval/index_build.py's


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"  # nothing to do: the index exists, the domain does not use llama.cpp, ...
    FAILED = "failed"


@dataclass
class Step:
    """One step of one domain: written by the domain's thread, read by requests (plain attribute writes)."""

    name: str
    state: StepState = StepState.PENDING
    started_at: float | None = None
    error: str | None = None
    log_path: str | None = None

    def begin(self, log_path: str | None = None) -> None:
        self.state, self.started_at, self.log_path = StepState.RUNNING, time.time(), log_path

    def end(self, state: StepState, error: str | None = None) -> bool:
        self.state, self.error = state, error
        return state is not StepState.FAILED


def _never(_domain: str) -> bool:
    return False


@dataclass(frozen=True)
class PreparationPlan:
    """What is prepared before a domain answers, besides its pipeline; the default prepares nothing else.
    `index_command(domain)` is the argv of an index build (tests pass a stand-in)."""

    index_command: Callable[[str], Sequence[str]] | None = None
    wheel_marker: Path | None = None
    uses_llama_cpp: Callable[[str], bool] = _never
    wheel_module: str = "llama_cpp"  # what must import once the wheel is installed
    poll_s: float = 1.0
    log_every_s: float = 60.0  # the status in the log: every minute, not every poll


def index_build_command(domain: str, threads: int | None = None) -> list[str]:
    """The real build, by this interpreter: `dossier -v index build --domain D --if-missing [--threads N]`."""
    argv = [sys.executable, "-m", "cli", "-v", "index", "build", "--domain", domain, "--if-missing"]
    return argv + (["--threads", str(threads)] if threads else [])


def serve_plan(backend: str | None = None, build_threads: int | None = None) -> PreparationPlan:
    """What `dossier serve` prepares: missing indexes, and the llama.cpp wheel `make run` builds meanwhile."""
    from core.paths import cache_dir

    return PreparationPlan(index_command=partial(index_build_command, threads=build_threads),
                           wheel_marker=cache_dir() / "wheels" / WHEEL_MARKER,
                           uses_llama_cpp=partial(_uses_llama_cpp, backend=backend))


def _uses_llama_cpp(domain: str, backend: str | None) -> bool:
    from domains import load_domain
    from rag.build_generation import chosen_backend

    return chosen_backend(load_domain(domain), backend) == "llama-cpp"


class Preparer:
    """Prepares `domains`: `build(domain)` makes each pipeline, `on_ready(domain, pipeline)` receives it."""

    def __init__(self, domains: Sequence[str], build: Callable[[str], RagPipeline], plan: PreparationPlan,
                 on_ready: Callable[[str, RagPipeline], None]) -> None:
        self.domains = tuple(dict.fromkeys(domains))
        self.plan = plan
        self.steps = {d: {name: Step(name) for name in ("index", "wheel", "load")} for d in self.domains}
        self._build, self._on_ready = build, on_ready
        self._stop = threading.Event()
        self._index_turn, self._load_turn = threading.Lock(), threading.Lock()
        self._children: set[subprocess.Popen[bytes]] = set()
        self._uses_wheel: dict[str, bool] = {}
        self._configs: dict[str, DomainConfig] = {}

    def prepare_all(self) -> None:
        """Every domain in turn, in the calling thread (for callers whose builder needs nothing prepared)."""
        for domain in self.domains:
            self.prepare(domain)

    def start(self) -> None:
        """A thread per domain, and one that logs what is still being prepared every `log_every_s`."""
        targets = [(partial(self.prepare, d), f"prepare-{d}") for d in self.domains] + [(self._report, "prepare-log")]
        for target, name in targets:
            threading.Thread(target=target, name=name, daemon=True).start()

    def stop(self) -> None:
        """Stops the waiting and ends the running index builds (the next build resumes them); a model load cannot
        be cut short: its daemon thread ends with the process."""
        self._stop.set()
        for child in list(self._children):
            _end(child)

    def prepare(self, domain: str) -> None:
        steps = self.steps[domain]
        for step, run in ((steps["index"], self._index), (steps["wheel"], self._wheel), (steps["load"], self._load)):
            try:
                ok = run(domain, step)
            except DossierError as err:
                ok = self._fail(domain, step, str(err))
            except Exception as err:  # one domain's failure must not stop the others: report it and go on
                log.exception("domain %s: %s failed", domain, step.name)
                ok = self._fail(domain, step, f"{type(err).__name__}: {err}")
            if not ok:
                return

    def _index(self, domain: str, step: Step) -> bool:
        if self.plan.index_command is None or not index_missing(domain):
            return step.end(StepState.SKIPPED)
        if not self._take(self._index_turn):
            return False
        try:
            root = index_root(domain)
            root.mkdir(parents=True, exist_ok=True)
            step.begin(str(root / BUILD_LOG))
            if not self._wait_for_earlier_build(domain, root) or not index_missing(domain):
                return not self._stop.is_set() and step.end(StepState.DONE)
            log.info("domain %s: no index, building it (log: %s)", domain, step.log_path)
            code = self._run(self.plan.index_command(domain), root / BUILD_LOG)
        finally:
            self._index_turn.release()
        if code is None:
            return False
        if code != 0:
            return self._fail(domain, step, f"index build exited with status {code}: {_last_line(root / BUILD_LOG)}")
        if index_missing(domain):
            return self._fail(domain, step, f"index build ended but there is no index under {root}")
        return step.end(StepState.DONE)

    def _wait_for_earlier_build(self, domain: str, root: Path) -> bool:
        """Waits while a build started before this server runs (False: the server stopped first)."""
        from retrieval.build_progress import read_progress

        progress = read_progress(root)
        if progress is None or not _live(progress):
            return True
        log.info("domain %s: an index build (pid %s) is already running: waiting for it", domain, progress["pid"])
        while (progress := read_progress(root)) is not None and _live(progress):
            if self._stop.wait(self.plan.poll_s):
                return False
        return True

    def _run(self, argv: Sequence[str], log_path: Path) -> int | None:
        """The exit status of `argv`, its output appended to `log_path`; None when the server stopped first."""
        with log_path.open("ab") as out:
            out.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
            out.flush()
            # its own session: Ctrl-C on the server does not reach it; a graceful stop ends it below
            child = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self._children.add(child)
        try:
            while child.poll() is None and not self._stop.wait(self.plan.poll_s):
                pass
        finally:
            self._children.discard(child)
        if self._stop.is_set():
            _end(child)
            return None
        return child.returncode

    def _wheel(self, domain: str, step: Step) -> bool:
        if self.plan.wheel_marker is None or not self._needs_wheel(domain):
            return step.end(StepState.SKIPPED)
        marker = read_wheel_marker(self.plan.wheel_marker)
        if marker is None and _importable(self.plan.wheel_module):
            return step.end(StepState.SKIPPED)
        step.begin(marker.get("log") if marker else None)
        if marker is not None:
            log.info("domain %s: waiting for the llama.cpp wheel build (log: %s)", domain, step.log_path)
        while marker is not None and _wheel_building(marker):
            if self._stop.wait(self.plan.poll_s):
                return False
            marker = read_wheel_marker(self.plan.wheel_marker)
        if marker is not None and marker.get("state") == "failed":
            return self._fail(domain, step, marker.get("message") or "the llama.cpp wheel build failed")
        if marker is not None:
            return self._fail(domain, step, f"the llama.cpp wheel build (pid {marker.get('pid')}) stopped before "
                              "it finished: `make run` starts it again")
        if not _importable(self.plan.wheel_module):
            return self._fail(domain, step, f"{self.plan.wheel_module} does not import and no wheel build is "
                              "running: `make llama-cpp-wheel` builds it (or serve with --backend transformers)")
        return step.end(StepState.DONE)

    def _load(self, domain: str, step: Step) -> bool:
        if not self._take(self._load_turn):
            return False
        try:
            step.begin()
            log.info("domain %s: loading its models", domain)
            pipeline = self._build(domain)
        finally:
            self._load_turn.release()
        self._on_ready(domain, pipeline)  # before the step says done: a ready domain always has its pipeline
        log.info("domain %s ready (models loaded in %.1f s)", domain, time.time() - (step.started_at or 0))
        return step.end(StepState.DONE)

    def _take(self, lock: threading.Lock) -> bool:
        """Waits for a turn; False (without it) when the server stops first."""
        while not self._stop.is_set():
            if lock.acquire(timeout=self.plan.poll_s):
                return True
        return False

    def _fail(self, domain: str, step: Step, reason: str) -> bool:
        step.end(StepState.FAILED, reason)
        where = f" (log: {step.log_path})" if step.log_path else ""
        log.error("domain %s failed at %s, not retried: %s%s", domain, step.name, reason, where)
        return False

    def _report(self) -> None:
        while not self._stop.wait(self.plan.log_every_s):
            preparing = [d for d in self.domains if self.state(d) == "preparing"]
            if not preparing:
                return
            for domain in preparing:
                log.info("domain %s: %s", domain, self.describe(domain)["reason"])

    def config(self, domain: str) -> DomainConfig:
        """The domain's config, to describe a domain that has no pipeline yet (read once)."""
        if domain not in self._configs:
            from domains import load_domain

            self._configs[domain] = load_domain(domain)
        return self._configs[domain]

    def state(self, domain: str) -> str:
        """ready, failed or preparing."""
        states = {s.state for s in self.steps[domain].values()}
        if StepState.FAILED in states:
            return "failed"
        return "ready" if states <= {StepState.DONE, StepState.SKIPPED} else "preparing"

    def all_ready(self) -> bool:
        return all(self.state(d) == "ready" for d in self.domains)

    def describe(self, domain: str) -> dict[str, Any]:
        """{state, reason, eta_s, steps: {index, wheel, load}}: what /readyz shows of one domain. `eta_s` is the
        longest known wait of the open steps (the index and the wheel build at the same time)."""
        now = time.time()
        views = {name: self._view(domain, step, now) for name, step in self.steps[domain].items()}
        state = self.state(domain)
        if state == "failed":
            step = next(s for s in self.steps[domain].values() if s.state is StepState.FAILED)
            where = f" (log: {step.log_path})" if step.log_path else ""
            return {"state": state, "reason": f"{step.name} failed: {step.error}{where}", "eta_s": None,
                    "steps": views}
        reasons = [v["reason"] for v in views.values() if v.get("reason")]
        etas = [v["eta_s"] for v in views.values() if v.get("eta_s") is not None]
        return {"state": state, "reason": "; ".join(reasons) or state, "eta_s": max(etas) if etas else None,
                "steps": views}

    def _view(self, domain: str, step: Step, now: float) -> dict[str, Any]:
        """One step; an open one says what it waits for (`reason`) and, where known, how long (`eta_s`)."""
        view: dict[str, Any] = {"state": str(step.state)}
        if step.log_path:
            view["log"] = step.log_path
        if step.state is StepState.RUNNING and step.started_at:
            view["elapsed_s"] = round(now - step.started_at)
        if step.state in (StepState.PENDING, StepState.RUNNING):
            detail = {"index": self._index_detail, "wheel": self._wheel_detail, "load": _load_detail}[step.name]
            view.update(detail(domain, step, now))
        return view

    def _index_detail(self, domain: str, step: Step, now: float) -> dict[str, Any]:
        from retrieval.build_progress import read_progress

        if step.state is StepState.PENDING:
            queued = self.plan.index_command is not None and index_missing(domain)
            return {"reason": "index missing: its build is queued"} if queued else {}
        progress = read_progress(index_root(domain))
        # ingest and the embedder load come before the first progress; a killed build's file says running false
        if progress is None or not progress.get("running") or not progress.get("total"):
            return {"reason": f"index build starting ({_duration(now - (step.started_at or now))} so far)"}
        eta, stage = progress.get("eta_s"), str(progress.get("stage"))
        left = f", ~{_duration(eta)} left" if eta is not None else ""
        reason = f"index {STAGE_WORDS.get(stage, stage)} {progress.get('done')}/{progress['total']} chunks{left}"
        keys = ("stage", "done", "total", "eta_s", "running")
        return {"reason": reason, "eta_s": eta, "progress": {k: progress.get(k) for k in keys}}

    def _wheel_detail(self, domain: str, step: Step, now: float) -> dict[str, Any]:
        marker = read_wheel_marker(self.plan.wheel_marker) if self.plan.wheel_marker else None
        if marker is None or not _wheel_building(marker) or not self._needs_wheel(domain):
            return {}
        elapsed, expected = now - float(marker.get("started_at") or now), float(marker.get("expected_s") or 0)
        # running: the Makefile's build runs beside the index build, whether or not this domain waits on it yet
        return {"state": str(StepState.RUNNING),
                "reason": f"llama.cpp wheel build {_duration(elapsed)} of ~{_duration(expected)}",
                "elapsed_s": round(elapsed), "expected_s": expected, "eta_s": round(max(expected - elapsed, 0.0)),
                "log": marker.get("log")}

    def _needs_wheel(self, domain: str) -> bool:
        if domain not in self._uses_wheel:  # reads domain.toml: once, not on every /readyz
            self._uses_wheel[domain] = self.plan.uses_llama_cpp(domain)
        return self._uses_wheel[domain]


def _load_detail(_domain: str, step: Step, now: float) -> dict[str, Any]:
    if step.state is StepState.RUNNING:
        return {"reason": f"loading the models ({_duration(now - (step.started_at or now))} so far)"}
    return {"reason": "models not loaded yet"}


def index_missing(domain: str) -> bool:
    from retrieval.store import IndexStore

    return IndexStore(index_root(domain)).current() is None


def read_wheel_marker(path: Path) -> dict[str, Any] | None:
    """The Makefile's {"state": "building" | "failed", "pid", "started_at", "expected_s", "log", "message"}."""
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def retry_after_s(eta_s: float | None) -> int:
    """What a client is told to wait: the estimate within [5 s, 10 min], 15 s without one."""
    return 15 if eta_s is None else int(min(max(eta_s, 5.0), 600.0))


def _wheel_building(marker: dict[str, Any]) -> bool:
    return marker.get("state") == "building" and pid_alive(int(marker.get("pid") or 0))


def _live(progress: dict[str, Any]) -> bool:
    return bool(progress.get("running")) and time.time() - float(progress.get("updated_at") or 0) < STALE_PROGRESS_S


def _end(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _importable(module: str) -> bool:
    importlib.invalidate_caches()  # the wheel was installed after this process started
    return importlib.util.find_spec(module) is not None


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _last_line(path: Path, limit: int = 300) -> str:
    """The last non-empty line of a log (a traceback's last line names the error)."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return (lines[-1] if lines else "(empty log)")[:limit]
