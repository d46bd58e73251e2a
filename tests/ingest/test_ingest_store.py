"""The shipped legal corpus, ingested once: every chunk quotes its document exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import IngestError
from domains import load_domain
from ingest.pipeline import STORE_FILE, run_ingest
from ingest.report import IngestReport
from ingest.store import ChunkStore


@pytest.fixture(scope="module")
def legal(tmp_path_factory: pytest.TempPathFactory) -> tuple[IngestReport, Path]:
    workspace = tmp_path_factory.mktemp("legal-ingest")
    return run_ingest(load_domain("legal"), workspace=workspace, progress=False), workspace


def test_every_chunk_is_the_exact_span_of_its_document(legal) -> None:
    _, workspace = legal
    with ChunkStore(workspace / STORE_FILE) as store:
        documents = {doc.doc_id: doc for doc in store.documents()}
        seen_docs = set()
        for chunk in store.chunks():
            assert chunk.text == documents[chunk.doc_id].text[chunk.start : chunk.end], chunk.chunk_id
            assert chunk.text.strip() == chunk.text and chunk.text
            seen_docs.add(chunk.doc_id)
        assert seen_docs == set(documents)  # every document has at least one chunk
        assert len(store) == len(store.chunk_hashes())


def test_legal_counts_and_duplicates(legal) -> None:
    report, workspace = legal
    assert report.files_ingested == 2 and not report.skipped
    assert report.documents == 26196  # the 505 Criminal Law articles inside statutes_all are exact duplicates
    assert report.exact_duplicates == 505 and report.near_duplicates == 0
    assert report.chunks == report.chunks_added >= report.documents
    with ChunkStore(workspace / STORE_FILE) as store:
        dupes = store.duplicates()
        assert len(dupes) == 505 and all(doc_id == kept for doc_id, kept in dupes.items())
        theft = store.chunk("d2da5d066414#第二百六十四条#c0")
        assert theft.title == "中华人民共和国刑法 第二百六十四条"
        assert theft.metadata["cail_article"] == 264  # the Criminal Law file won, with its CAIL labels
        assert store.document(theft.doc_id).source == "data/corpus/criminal_law_articles.jsonl.gz"


def test_chunk_order_and_hashes_are_stable(legal) -> None:
    _, workspace = legal
    with ChunkStore(workspace / STORE_FILE) as one, ChunkStore(workspace / STORE_FILE) as two:
        ids = [c.chunk_id for c in one.chunks()]
        assert ids == [c.chunk_id for c in two.chunks()] and len(set(ids)) == len(ids)
        assert one.chunk_hashes() == two.chunk_hashes()


def test_lookups_of_missing_ids_raise_key_error(legal) -> None:
    _, workspace = legal
    with ChunkStore(workspace / STORE_FILE) as store:
        with pytest.raises(KeyError):
            store.chunk("nope#c0")
        with pytest.raises(KeyError):
            store.document("nope")


def test_a_missing_store_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="dossier ingest"):
        ChunkStore(tmp_path / "none.sqlite")


def test_a_store_of_an_older_schema_is_rebuilt(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "chunks.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE duplicates (source TEXT, doc_id TEXT)")  # an older layout, user_version 0
    with ChunkStore(path) as store:
        assert len(store) == 0 and store.duplicate_rows() == []
