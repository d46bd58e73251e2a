"""One loader per file format. `load_source(file)` returns the documents of one file and the records it skipped;
a file that cannot be read at all raises `IngestError` with the reason."""

from __future__ import annotations

from ingest.loaders.base import LoadResult
from ingest.sources import SourceFile

__all__ = ["LoadResult", "load_source"]


def load_source(file: SourceFile) -> LoadResult:
    # Imports per format: a run over JSONL never imports pypdf or python-docx.
    match file.format:
        case "jsonl":
            from ingest.loaders.records import load_jsonl

            return load_jsonl(file)
        case "csv":
            from ingest.loaders.records import load_csv

            return load_csv(file)
        case "txt" | "md":
            from ingest.loaders.text import load_text

            return load_text(file)
        case "html":
            from ingest.loaders.webpage import load_html

            return load_html(file)
        case "pdf":
            from ingest.loaders.pdf import load_pdf

            return load_pdf(file)
        case "docx":
            from ingest.loaders.docx_file import load_docx

            return load_docx(file)
    raise AssertionError(f"unhandled format {file.format!r}")  # sources.detect_format only yields the above
