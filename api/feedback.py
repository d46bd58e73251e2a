"""Feedback on answers, stored as training records for `dossier train dpo` / `kto`.

A preferred answer -> `<workspace>/feedback/preferences.jsonl`: {"prompt", "chosen", "rejected", "domain",
"question", "created"}. A thumbs up / down -> `<workspace>/feedback/kto.jsonl`: {"prompt", "completion", "label",
"domain", "question", "created"}. `prompt` is the chat the pipeline sends its generator for that question
(`RagPipeline.prompt`: system prompt, recent turns, numbered evidence and the question), so a preference recipe
trains the model on the prompt it is served with.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.schemas import FeedbackRequest
from core.paths import domain_workspace
from core.protocols import Message

PREFERENCES_FILE = "preferences.jsonl"
KTO_FILE = "kto.jsonl"


def feedback_dir(domain: str) -> Path:
    return domain_workspace(domain) / "feedback"


def feedback_records(request: FeedbackRequest, prompt: Sequence[Message]) -> list[tuple[str, dict[str, Any]]]:
    """(file name, record) for each record this feedback makes; `prompt` is the pipeline's chat for the question."""
    common = {"domain": request.domain, "question": request.question, "created": datetime.now(UTC).isoformat()}
    chat = [{"role": m.role, "content": m.content} for m in prompt]
    records: list[tuple[str, dict[str, Any]]] = []
    if request.preferred is not None and request.preferred != request.answer:
        records.append((PREFERENCES_FILE, {"prompt": chat, "chosen": request.preferred,
                                           "rejected": request.answer, **common}))
    if request.rating is not None:
        label = request.rating == "up"
        records.append((KTO_FILE, {"prompt": chat, "completion": request.answer, "label": label, **common}))
    return records


class JsonlFeedbackStore:
    """Appends records, one JSON line each; a lock keeps concurrent requests' lines whole."""

    def __init__(self, root_for: Callable[[str], Path] = feedback_dir) -> None:
        self.root_for = root_for
        self._lock = threading.Lock()

    def append(self, domain: str, records: list[tuple[str, dict[str, Any]]]) -> list[str]:
        folder = self.root_for(domain)
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            for name, record in records:
                with (folder / name).open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return [name for name, _ in records]
