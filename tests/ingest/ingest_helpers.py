"""Helpers for ingest tests: shipped legal records, and real files of every format, good and bad."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from domains import DOMAINS_DIR

LEGAL_ROOT = DOMAINS_DIR / "legal"
CRIMINAL_LAW = LEGAL_ROOT / "data" / "corpus" / "criminal_law_articles.jsonl.gz"


def criminal_law_records(n: int | None = None) -> list[dict[str, Any]]:
    with gzip.open(CRIMINAL_LAW, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return rows[:n] if n else rows


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    path.write_bytes(gzip.compress(body) if path.suffix == ".gz" else body)
    return path


def statute_source(path: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    fields = ["law_id", "law_name", "article_no", "status", "version_date", *extra]
    return {"path": path, "format": "jsonl", "title_fields": ["law_name", "article_no"], "metadata_fields": fields}


CONTRACT_ZH = "第一条 本合同自双方签字之日起生效。"


def write_pdf(path: Path, lines: list[str], title: str = "") -> Path:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))  # a built-in CJK font: Chinese text extracts back
    pdf = canvas.Canvas(str(path))
    if title:
        pdf.setTitle(title)
    for page in lines:
        pdf.setFont("STSong-Light", 12)
        for i, line in enumerate(page.split("\n")):
            pdf.drawString(72, 720 - 18 * i, line)
        pdf.showPage()
    pdf.save()
    return path


def write_docx(path: Path, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = "docx title"
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(str(path))
    return path


def write_truncated(source: Path, path: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_mixed_folder(folder: Path, gbk_text: str) -> dict[str, Path]:
    """Good: a PDF, a GBK text, a docx, an html page, a markdown note. Bad: a truncated PDF, an empty file, a binary
    file named .txt."""
    folder.mkdir(parents=True, exist_ok=True)
    good_pdf = write_pdf(folder / "contract.pdf", [CONTRACT_ZH + "\nPayment is due within 30 days.", "Page two."])
    files = {
        "pdf": good_pdf,
        "gbk": folder / "notes_gbk.txt",
        "docx": write_docx(folder / "memo.docx", ["Memo line one.", "Memo line two."], [["a", "b"], ["c", "d"]]),
        "html": folder / "page.html",
        "corrupt_pdf": write_truncated(good_pdf, folder / "broken.pdf"),
        "empty": folder / "empty.txt",
        "binary": folder / "photo.txt",
    }
    files["gbk"].write_bytes(gbk_text.encode("gbk"))
    files["html"].write_text("<html><head><title>Page</title><script>var x=1;</script></head>"
                             "<body><p>Hello.</p><p>World!</p></body></html>", encoding="utf-8")  # fmt: skip
    files["empty"].write_bytes(b"")
    files["binary"].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    return files
