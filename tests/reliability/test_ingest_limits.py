"""The limits of ingest/limits.py are configurable per run, and a file they refused is read again under others."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_case import A
from hostile_worker import PROMPTS

import ingest.pipeline
from domains.config import domain_from_mapping
from ingest.limits import IngestLimits
from ingest.pipeline import run_ingest


def test_a_file_refused_by_the_limits_is_read_again_under_other_limits(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "law.txt").write_text(A * 40, encoding="utf-8")  # ~5 KB
    cfg = domain_from_mapping({"name": "t", "display_name": "T", "language": "zh", "corpus": [{"path": "law.txt"}],
                               "prompts": PROMPTS}, root=tmp_path)
    tight = IngestLimits(max_file_bytes=1024)
    first = run_ingest(cfg, workspace=tmp_path / "ws", progress=False, limits=tight)
    assert first.files_ingested == 0 and "over the 1024 bytes limit" in first.skipped[0].reason

    parsed: list[str] = []
    load = ingest.pipeline.load_source
    monkeypatch.setattr(ingest.pipeline, "load_source", lambda f, lim: parsed.append(f.key) or load(f, lim))
    again = run_ingest(cfg, workspace=tmp_path / "ws", progress=False, limits=tight)
    assert parsed == [] and again.skipped == first.skipped  # same limits: the skip stands, nothing is re-read
    looser = run_ingest(cfg, workspace=tmp_path / "ws", progress=False)
    assert parsed == ["law.txt"] and looser.files_ingested == 1 and not looser.skipped


def test_limits_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="max_pdf_pages must be >= 1"):
        IngestLimits(max_pdf_pages=0)
