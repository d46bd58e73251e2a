"""Drives `hostile_worker.py`: writes every case's input into its own folder, runs the worker as a subprocess and
reads its JSON lines, each within a timeout. A case that hangs (no line in time) or kills the worker is recorded as
such, the worker is stopped (by its pid) and a fresh one goes on with the cases after it."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hostile_case import Case

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("hostile_worker.py")
CASE_TIMEOUT_S = 60.0  # a case that takes longer hangs (the slowest one takes a few seconds on two busy cores)


def prepare(cases: Sequence[Case], root: Path) -> list[dict[str, Any]]:
    specs = []
    for case in cases:
        folder = root / case.name / "input"
        folder.mkdir(parents=True)
        started = time.perf_counter()
        path = case.make(folder)
        specs.append({"name": case.name, "folder": str(folder), "path": os.fsdecode(path),
                      "workspace": str(root / case.name / "workspace"), "corpus": list(case.corpus),
                      "make_s": round(time.perf_counter() - started, 2)})
    return specs


def run_all(specs: list[dict[str, Any]], root: Path) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    pending = list(specs)
    while pending:
        results.update(_run_worker(pending, root))
        pending = [s for s in pending if s["name"] not in results]
    return results


def _run_worker(specs: list[dict[str, Any]], root: Path) -> dict[str, dict[str, Any]]:
    cases_file = root / f"cases-{specs[0]['name']}.json"
    cases_file.write_text(json.dumps(specs, ensure_ascii=True), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]), "OMP_NUM_THREADS": "1"}
    with (root / "worker.log").open("ab") as log:  # the parsers' warnings; a pipe could fill up and block it
        proc = subprocess.Popen([sys.executable, str(WORKER), str(cases_file)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=log, bufsize=0)
    assert proc.stdout is not None
    lines = Lines(proc.stdout.fileno())
    results: dict[str, dict[str, Any]] = {}
    try:
        for spec in specs:
            line = lines.next_within(CASE_TIMEOUT_S)
            if line is None:
                state = "hung" if proc.poll() is None else f"killed the worker (exit {proc.returncode})"
                results[spec["name"]] = {"name": spec["name"], "error": f"{state}", "seconds": CASE_TIMEOUT_S}
                return results
            result = json.loads(line)
            results[result["name"]] = {**result, "make_s": spec["make_s"]}
    finally:
        if proc.poll() is None:
            proc.kill()  # only the worker this function started
        proc.wait()
        proc.stdout.close()
    return results


class Lines:
    """Lines from a pipe, each waited for at most a deadline (select on the raw descriptor, our own buffer)."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer = fd, b""
        self.seen: list[bytes] = []  # every line returned so far

    def next_within(self, timeout_s: float) -> bytes | None:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return None  # the worker died
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        self.seen.append(line)
        return line
