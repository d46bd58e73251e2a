"""How far an index build has come, in a small JSON file beside the index, for whoever waits on it.

The builder (`retrieval/index_build.py`) rewrites `<index root>/build-progress.json` as it goes (atomically, at
most every few seconds); the server's `/readyz` and `dossier index status` read it to say what is still being
prepared and how long it will take. The file is removed when the version is written, so its presence means a
build is running or was killed (a stale `updated_at` and a dead `pid` tell the two apart).

    {"domain": "legal", "stage": "embed", "done": 1200, "total": 26390, "pid": 4242,
     "started_at": 1796000000.0, "updated_at": 1796000100.0, "eta_s": 2100.0}
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

PROGRESS_FILE = "build-progress.json"
WRITE_EVERY_S = 2.0


class BuildProgress:
    """Writes one build's progress; `stage` names the step (tokenize, pack, embed, write)."""

    def __init__(self, index_root: Path, domain: str) -> None:
        self.path = Path(index_root) / PROGRESS_FILE
        self.domain = domain
        self.started_at = time.time()
        self._stage_started = self.started_at
        self._stage = ""
        self._last_write = 0.0

    def update(self, stage: str, done: int, total: int, *, force: bool = False) -> None:
        now = time.time()
        if stage != self._stage:
            self._stage, self._stage_started, force = stage, now, True
        if not force and now - self._last_write < WRITE_EVERY_S:
            return
        rate = done / (now - self._stage_started) if done and now > self._stage_started else 0.0
        eta = (total - done) / rate if rate > 0 else None
        state = {"domain": self.domain, "stage": stage, "done": done, "total": total, "pid": os.getpid(),
                 "started_at": self.started_at, "updated_at": now, "eta_s": None if eta is None else round(eta, 1)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{PROGRESS_FILE}.{os.getpid()}")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.path)
        self._last_write = now

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)


def read_progress(index_root: Path) -> dict[str, Any] | None:
    """The last progress a build wrote under `index_root`, with `running` (its pid is alive); None when absent."""
    path = Path(index_root) / PROGRESS_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    state["running"] = pid_alive(int(state.get("pid", 0)))
    return state


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0 probes without touching it)."""
    if pid <= 0:  # 0 and -1 would ask about whole process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True
