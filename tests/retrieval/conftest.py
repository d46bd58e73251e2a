"""Retrieval fixtures over the helpers in retrieval_support.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from retrieval_support import article_chunk, read_articles, write_chunk_store


@pytest.fixture(scope="session")
def articles() -> list[dict]:
    """The first 120 articles of the Criminal Law plus the theft / fraud / robbery articles."""
    rows = read_articles(120)
    wanted = {"第二百六十三条", "第二百六十四条", "第二百六十六条", "第二百三十二条", "第一百三十三条"}
    rows += [r for r in read_articles(2000) if r["article_no"] in wanted and r not in rows]
    return rows


@pytest.fixture()
def chunk_store_path(tmp_path: Path, articles: list[dict]) -> Path:
    return write_chunk_store(tmp_path / "ingest" / "chunks.sqlite", [article_chunk(r) for r in articles])
