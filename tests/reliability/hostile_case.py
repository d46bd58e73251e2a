"""What one hostile case is, and the small builders the case lists share (see `hostile_cases.py`)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from domains import DOMAINS_DIR

ARTICLE_FILE = DOMAINS_DIR / "legal" / "data" / "corpus" / "criminal_law_articles.jsonl.gz"
Outcome = Literal["skipped", "partial", "cleaned", "ingested"]
Data = bytes | str | Callable[[], bytes | str]  # a callable: made only when the case runs (some are megabytes)


def article(n: int) -> str:
    """Article `n` (0-based line) of the shipped Criminal Law: plain Chinese legal text."""
    with gzip.open(ARTICLE_FILE, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i == n:
                return json.loads(line)["text"]
    raise AssertionError(n)


A, B = article(2), article(3)


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]  # writes the input into an empty folder; returns what is given to ingest
    expect: Outcome
    reason: str = ""  # a regex some reason in the report must match (skipped, partial)
    check: Callable[[dict[str, Any]], bool] | None = None  # on the worker's result (its documents' texts)
    corpus: tuple[dict[str, Any], ...] = ()  # run as the declared corpus of a domain rooted at the folder instead


def write(name: str, data: Data) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        content = data() if callable(data) else data
        path = folder / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return make


def text_has(*parts: str) -> Callable[[dict[str, Any]], bool]:
    return lambda result: all(any(p in t for t in result["texts"]) for p in parts)


def text_lacks(*chars: str) -> Callable[[dict[str, Any]], bool]:
    return lambda result: bool(result["texts"]) and not any(c in t for t in result["texts"] for c in chars)
