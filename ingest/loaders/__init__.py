"""One loader per file format. `load_source(file, limits)` returns the documents of one file and the records it
skipped; a file that cannot be read at all, or only past `limits` (ingest/limits.py), raises `IngestError` with the
reason."""

from __future__ import annotations

from ingest.limits import IngestLimits
from ingest.loaders.base import LoadResult
from ingest.sources import SourceFile

__all__ = ["LoadResult", "load_source"]


def load_source(file: SourceFile, limits: IngestLimits | None = None) -> LoadResult:
    limits = limits or IngestLimits()
    # Imports per format: a run over JSONL never imports pypdf or python-docx.
    match file.format:
        case "jsonl":
            from ingest.loaders.records import load_jsonl

            return load_jsonl(file, limits)
        case "csv":
            from ingest.loaders.records import load_csv

            return load_csv(file, limits)
        case "txt" | "md":
            from ingest.loaders.text import load_text

            return load_text(file, limits)
        case "html":
            from ingest.loaders.webpage import load_html

            return load_html(file, limits)
        case "pdf":
            from ingest.loaders.pdf import load_pdf

            return load_pdf(file, limits)
        case "docx":
            from ingest.loaders.docx_file import load_docx

            return load_docx(file, limits)
    raise AssertionError(f"unhandled format {file.format!r}")  # sources.detect_format only yields the above
