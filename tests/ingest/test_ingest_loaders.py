"""Each loader on small real files made here (reportlab PDF, python-docx, GBK text, ...)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_helpers import (
    CONTRACT_ZH,
    criminal_law_records,
    statute_source,
    write_docx,
    write_jsonl,
    write_pdf,
    write_truncated,
)

from core.errors import IngestError
from ingest.loaders import load_source
from ingest.sources import SourceFile, discover


def source_file(make_domain, path: Path) -> SourceFile:
    (file,) = discover(make_domain([{"path": "unused"}]), [path]).files
    return file


def test_jsonl_record_becomes_a_document_with_title_and_metadata(make_domain, tmp_path: Path) -> None:
    records = criminal_law_records(2)
    path = write_jsonl(tmp_path / "domain" / "laws.jsonl.gz", records)
    cfg = make_domain([statute_source("laws.jsonl.gz")])
    (file,) = discover(cfg).files
    docs = load_source(file).documents
    assert [d.doc_id for d in docs] == [r["doc_id"] for r in records]
    assert docs[0].title == f"{records[0]['law_name']} {records[0]['article_no']}"
    assert docs[0].metadata["status"] == records[0]["status"]
    assert "cail_article" not in docs[0].metadata  # only the declared metadata fields
    assert docs[0].source == "laws.jsonl.gz" and path.is_file()


def test_malformed_jsonl_lines_are_skipped_and_the_rest_goes_on(make_domain, tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"doc_id": "a", "text": "one."}\n{broken\n[1, 2]\n{"doc_id": "b"}\n\n{"text": "three."}\n')
    result = load_source(source_file(make_domain, path))
    assert [d.doc_id for d in result.documents] == ["a", "x.jsonl#L6"]  # an id made up from the line number
    reasons = {item.path.rsplit(":", 1)[1]: item.reason for item in result.skipped}
    assert set(reasons) == {"2", "3", "4"}
    assert "malformed JSON" in reasons["2"] and "not an object" in reasons["3"] and "no text field" in reasons["4"]


def test_csv_rows(make_domain, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("doc_id,text\nr1,First row.\nr2,\nr3,Third row.\n", encoding="utf-8")
    result = load_source(source_file(make_domain, path))
    assert [d.text for d in result.documents] == ["First row.", "Third row."]
    assert [s.path.endswith(":3") for s in result.skipped] == [True]


def test_gbk_text_file(make_domain, tmp_path: Path) -> None:
    article = criminal_law_records(1)[0]["text"]
    path = tmp_path / "gbk_note.txt"
    path.write_bytes(article.encode("gbk"))
    (doc,) = load_source(source_file(make_domain, path)).documents
    assert doc.text == article and doc.title == "gbk_note" and doc.doc_id == "gbk_note.txt"
    assert doc.metadata["encoding"] == "gb18030"


def test_markdown_title_is_its_first_heading(make_domain, tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_text("intro\n\n## Heading Two ##\n\nBody.\n", encoding="utf-8")
    (doc,) = load_source(source_file(make_domain, path)).documents
    assert doc.title == "Heading Two" and "Body." in doc.text


def test_html_keeps_visible_text_only(make_domain, tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text(
        "<html><head><title>T</title><style>p{}</style></head><body><p>One.</p><script>x()</script>"
        "<ul><li>Two</li></ul></body></html>",
        encoding="utf-8",
    )
    (doc,) = load_source(source_file(make_domain, path)).documents
    assert doc.title == "T" and doc.text == "One.\nTwo"


def test_html_inline_markup_stays_in_its_sentence(make_domain, tmp_path: Path) -> None:
    path = tmp_path / "inline.html"
    path.write_text("<p>Hello <b>bold</b> <a href='#'>world</a>!</p><table><tr><td>a</td><td>b</td></tr></table>")
    (doc,) = load_source(source_file(make_domain, path)).documents
    assert doc.text == "Hello bold world!\na | b"


def test_pdf_text_title_and_page_offsets(make_domain, tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "c.pdf", [CONTRACT_ZH, "Page two."], title="Contract")
    (doc,) = load_source(source_file(make_domain, path)).documents
    assert doc.title == "Contract" and doc.metadata["pages"] == 2
    second = doc.metadata["page_starts"][1]
    assert doc.text.startswith(CONTRACT_ZH) and doc.text[second:] == "Page two."


def test_docx_paragraphs_and_tables_in_order(make_domain, tmp_path: Path) -> None:
    path = write_docx(tmp_path / "m.docx", ["First.", "Second."], [["a", "b"], ["c", "d"]])
    (doc,) = load_source(source_file(make_domain, path)).documents
    assert doc.text == "First.\nSecond.\na | b\nc | d" and doc.title == "docx title"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blob.txt", b"\x7fELF\x02\x01\x01\x00" + bytes(512), "binary"),
        ("fake.pdf", b"just text", "not a PDF"),
        ("fake.docx", b"PK\x03\x04 not really a zip", "corrupt or not a .docx"),
        ("bad.jsonl.gz", b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
        ("blank.html", b"<html><body><script>x()</script></body></html>", "no text"),
    ],
)
def test_bad_files_raise_with_a_reason(make_domain, tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(IngestError, match=reason):
        load_source(source_file(make_domain, path))


def test_truncated_pdf_is_corrupt(make_domain, tmp_path: Path) -> None:
    good = write_pdf(tmp_path / "good.pdf", [CONTRACT_ZH])
    with pytest.raises(IngestError, match="corrupt PDF"):
        load_source(source_file(make_domain, write_truncated(good, tmp_path / "cut.pdf")))
