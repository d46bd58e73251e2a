"""Start `crash_worker.py` as a real subprocess and SIGKILL it after a chosen step (plus a delay): the steps it had
printed by then say where the kill landed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hostile_run import Lines

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("crash_worker.py")
STEP_TIMEOUT_S = 60.0  # no step of the worker takes near this long


@dataclass(frozen=True)
class Kill:
    steps: tuple[str, ...]  # what the worker had done (printed) when it died
    seconds: float  # from "ready" to the kill

    @property
    def last(self) -> str:
        return self.steps[-1] if self.steps else "ready"

    @property
    def finished(self) -> bool:
        return "done" in self.steps


def worker_env() -> dict[str, str]:
    paths = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).parent)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}


def run_worker(args: list[str]) -> list[str]:
    """Run the worker to its end; returns its steps."""
    done = subprocess.run([sys.executable, str(WORKER), *args], env=worker_env(), cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


def kill_after(args: list[str], step: int, delay_s: float) -> Kill:
    """SIGKILL the worker `delay_s` after its `step`-th step (counted from 1 after "ready")."""
    proc = subprocess.Popen([sys.executable, str(WORKER), *args], env=worker_env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    assert proc.stdout is not None
    lines, steps, started = Lines(proc.stdout.fileno()), 0, 0.0
    try:
        while (line := lines.next_within(STEP_TIMEOUT_S)) is not None:
            if line == b"ready":
                started = time.monotonic()
                continue
            steps += 1
            if steps == step or line == b"done":
                break
        time.sleep(delay_s)
        os.kill(proc.pid, signal.SIGKILL)  # the worker this function started, by its pid
        seconds = time.monotonic() - started
        proc.wait(timeout=30)
        rest = proc.stdout.read() or b""  # what it printed before it died
        done = lines.buffer + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    printed = [s.decode() for s in (lines.seen + done.split())]
    return Kill(tuple(s for s in printed if s != "ready"), seconds)
