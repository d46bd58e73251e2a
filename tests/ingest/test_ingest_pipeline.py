"""The whole run: the mixed folder of issue 2 through the CLI, incremental re-runs, scopes, crash safety."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ingest_helpers import criminal_law_records, statute_source, write_jsonl, write_mixed_folder

import ingest.pipeline
import ingest.reconcile
from cli import main
from core.paths import ingest_dir
from ingest.pipeline import REPORT_FILE, STORE_FILE, run_ingest
from ingest.store import ChunkStore

GBK_ARTICLE = criminal_law_records(3)[2]["text"]


def store_of(workspace: Path) -> ChunkStore:
    return ChunkStore(workspace / STORE_FILE)


def test_mixed_folder_good_files_chunked_bad_ones_listed(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "inbox"
    write_mixed_folder(folder, GBK_ARTICLE)
    (folder / "data.bin").write_bytes(b"\x00\x01")
    code = main(["ingest", "--domain", "legal", str(folder), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 3 and "completed with skips" in out
    report = json.loads((ingest_dir("legal") / REPORT_FILE).read_text(encoding="utf-8"))
    reasons = {Path(item["path"]).name: item["reason"] for item in report["skipped"]}
    assert set(reasons) == {"broken.pdf", "empty.txt", "photo.txt", "data.bin"}
    assert "corrupt PDF" in reasons["broken.pdf"] and "empty file" in reasons["empty.txt"]
    assert "binary" in reasons["photo.txt"] and "unsupported file type" in reasons["data.bin"]
    assert report["files_ingested"] == 4 and report["files_skipped"] == 4
    with store_of(ingest_dir("legal")) as store:
        docs = {doc.doc_id: doc for doc in store.documents()}
        assert set(docs) == {"inbox/contract.pdf", "inbox/notes_gbk.txt", "inbox/memo.docx", "inbox/page.html"}
        assert docs["inbox/notes_gbk.txt"].text == GBK_ARTICLE
        assert all(c.text == docs[c.doc_id].text[c.start : c.end] for c in store.chunks())


def test_a_clean_run_exits_zero(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.txt").write_text("Just one good file.", encoding="utf-8")
    assert main(["ingest", "--domain", "legal", str(tmp_path / "a.txt"), "--no-progress"]) == 0
    assert "completed with skips" not in capsys.readouterr().out


def test_reingest_is_a_no_op_that_parses_nothing(make_domain, tmp_path: Path, monkeypatch) -> None:
    write_jsonl(tmp_path / "domain" / "a.jsonl", criminal_law_records(40))
    cfg = make_domain([statute_source("a.jsonl")], strategy="statute")
    first = run_ingest(cfg, progress=False)
    hashes = store_of(ingest_dir("t")).chunk_hashes()

    def no_parsing(file):
        raise AssertionError(f"parsed {file.key} although it did not change")

    monkeypatch.setattr(ingest.pipeline, "load_source", no_parsing)
    second = run_ingest(cfg, progress=False)
    assert first.chunks_added == first.chunks > 0
    assert (second.chunks_added, second.chunks_removed, second.files_unchanged) == (0, 0, 1)
    assert second.chunks_unchanged == first.chunks
    assert store_of(ingest_dir("t")).chunk_hashes() == hashes


def test_a_changed_file_updates_only_its_changed_documents(make_domain, tmp_path: Path) -> None:
    records = criminal_law_records(40)
    write_jsonl(tmp_path / "domain" / "a.jsonl", records[:20])
    write_jsonl(tmp_path / "domain" / "b.jsonl", records[20:])
    cfg = make_domain([statute_source("a.jsonl"), statute_source("b.jsonl")], strategy="statute")
    run_ingest(cfg, progress=False)
    before = store_of(ingest_dir("t")).chunk_hashes()
    edited = [dict(r) for r in records[:20]]
    edited[3]["text"] += "\n新增一款。"
    write_jsonl(tmp_path / "domain" / "a.jsonl", edited)
    report = run_ingest(cfg, progress=False)
    after = store_of(ingest_dir("t")).chunk_hashes()
    changed = {cid for cid in before.keys() | after.keys() if before.get(cid) != after.get(cid)}
    assert changed and all(cid.startswith(records[3]["doc_id"] + "#c") for cid in changed)
    assert (report.files_ingested, report.files_unchanged, report.documents_added, report.documents_removed) == (
        1, 1, 1, 1,
    )  # fmt: skip


def test_a_deleted_file_removes_its_chunks(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "keep.txt").write_text("Keep me.", encoding="utf-8")
    (folder / "drop.md").write_text("# Drop\n\nDrop me.", encoding="utf-8")
    from domains import load_domain

    cfg = load_domain("medical")
    assert run_ingest(cfg, [folder], progress=False).documents == 2
    (folder / "drop.md").unlink()
    report = run_ingest(cfg, [folder], progress=False)
    assert report.files_removed == 1 and report.documents == 1 and report.chunks_removed >= 1
    with store_of(ingest_dir("medical")) as store:
        assert [c.doc_id for c in store.chunks()] == ["docs/keep.txt"]


def test_extra_paths_and_the_declared_corpus_do_not_undo_each_other(make_domain, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "domain" / "a.jsonl", criminal_law_records(5))
    cfg = make_domain([statute_source("a.jsonl")])
    extra = tmp_path / "mine"
    extra.mkdir()
    (extra / "note.txt").write_text("My own note.", encoding="utf-8")
    run_ingest(cfg, progress=False)
    assert run_ingest(cfg, [extra], progress=False).documents == 6
    again = run_ingest(cfg, progress=False)  # the corpus scope does not see mine/ as deleted
    assert (again.documents, again.files_removed, again.chunks_added) == (6, 0, 0)
    shutil.rmtree(extra)
    gone = run_ingest(cfg, [extra], progress=False)  # the folder's own scope does
    assert (gone.documents, gone.files_removed) == (5, 1)


def test_exact_and_near_duplicates_and_revival(make_domain, tmp_path: Path) -> None:
    texts = [r["text"] for r in criminal_law_records(60) if len(r["text"]) > 120][:3]
    near = texts[0][:-3] + "XYZ" + texts[0][-3:]  # one tiny edit of a long text
    write_jsonl(tmp_path / "domain" / "a.jsonl", [{"doc_id": f"a{i}", "text": t} for i, t in enumerate(texts)])
    rows = [{"doc_id": "b0", "text": texts[1]}, {"doc_id": "b1", "text": near}, {"doc_id": "b2", "text": "new."}]
    write_jsonl(tmp_path / "domain" / "b.jsonl", rows)
    cfg = make_domain([{"path": "a.jsonl"}, {"path": "b.jsonl"}], strategy="sentence", near_duplicate_threshold=0.8)
    report = run_ingest(cfg, progress=False)
    assert (report.documents, report.exact_duplicates, report.near_duplicates) == (4, 1, 1)
    assert store_of(ingest_dir("t")).duplicates() == {"b0": "a1", "b1": "a0"}
    (tmp_path / "domain" / "a.jsonl").unlink()  # the kept originals go: their duplicates come back
    report = run_ingest(cfg, progress=False)
    assert (report.documents, report.exact_duplicates, report.near_duplicates) == (3, 0, 0)
    assert {d.doc_id for d in store_of(ingest_dir("t")).documents()} == {"b0", "b1", "b2"}


def test_versions_of_a_law_are_not_duplicates(make_domain, tmp_path: Path) -> None:
    record = criminal_law_records(1)[0]
    old = {**record, "doc_id": "old#1", "law_id": "old", "status": "历史版本", "version_date": "1979-07-01"}
    write_jsonl(tmp_path / "domain" / "a.jsonl", [record, old, {**record}])
    report = run_ingest(make_domain([statute_source("a.jsonl")]), progress=False)
    assert (report.documents, report.exact_duplicates) == (2, 1)


def test_a_doc_id_conflict_is_skipped_with_a_reason(make_domain, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "domain" / "a.jsonl", [{"doc_id": "x", "text": "One text."}])
    write_jsonl(tmp_path / "domain" / "b.jsonl", [{"doc_id": "x", "text": "Another text."}])
    report = run_ingest(make_domain([{"path": "a.jsonl"}, {"path": "b.jsonl"}]), progress=False)
    assert report.documents == 1 and report.id_conflicts == 1
    assert [item.path for item in report.skipped] == ["b.jsonl#x"]


def test_a_crash_mid_run_leaves_the_last_committed_store(make_domain, tmp_path: Path, monkeypatch) -> None:
    records = criminal_law_records(30)
    write_jsonl(tmp_path / "domain" / "a.jsonl", records[:10])
    cfg = make_domain([statute_source("a.jsonl")])
    run_ingest(cfg, progress=False)
    before = store_of(ingest_dir("t")).chunk_hashes()
    write_jsonl(tmp_path / "domain" / "a.jsonl", records[5:30])
    real, calls = ingest.reconcile.chunk_document, []

    def crash_on_the_fifth(doc, chunking):
        calls.append(doc.doc_id)
        if len(calls) == 5:
            raise RuntimeError("power cut")
        return real(doc, chunking)

    monkeypatch.setattr(ingest.reconcile, "chunk_document", crash_on_the_fifth)
    with pytest.raises(RuntimeError):
        run_ingest(cfg, progress=False)
    assert store_of(ingest_dir("t")).chunk_hashes() == before  # nothing half-written
    monkeypatch.setattr(ingest.reconcile, "chunk_document", real)
    report = run_ingest(cfg, progress=False)  # the manifest did not move either: the change is picked up
    assert (report.documents, report.documents_added, report.documents_removed) == (25, 20, 5)


def test_new_chunking_settings_rebuild_the_store(make_domain, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "domain" / "a.jsonl", criminal_law_records(20))
    run_ingest(make_domain([statute_source("a.jsonl")], max_chars=512), progress=False)
    report = run_ingest(make_domain([statute_source("a.jsonl")], max_chars=64, overlap_chars=0), progress=False)
    assert report.files_ingested == 1 and report.chunks_added == report.chunks > 20
    assert all(len(c.text) <= 64 for c in store_of(ingest_dir("t")).chunks())


def test_a_source_dropped_from_the_domain_config_goes(make_domain, tmp_path: Path) -> None:
    records = criminal_law_records(10)
    write_jsonl(tmp_path / "domain" / "a.jsonl", records[:5])
    write_jsonl(tmp_path / "domain" / "b.jsonl", records[5:])
    run_ingest(make_domain([statute_source("a.jsonl"), statute_source("b.jsonl")]), progress=False)
    report = run_ingest(make_domain([statute_source("a.jsonl")]), progress=False)
    assert (report.files_removed, report.documents, report.documents_removed) == (1, 5, 5)
