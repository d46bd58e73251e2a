"""PDF via pypdf: the text of every page, pages separated by a blank line. `page_starts` in the metadata gives
each page's offset into the normalised text, so a citation can name its page. Truncated, corrupt, encrypted and
image-only PDFs are skipped with a reason, and so are files over `IngestLimits.max_file_bytes` (refused before
they are read) or with more than `IngestLimits.max_pdf_pages` pages (counted before any text is extracted).
pypdf bounds each stream it inflates itself (75 MB: `pypdf.filters.ZLIB_MAX_OUTPUT_LENGTH`)."""

from __future__ import annotations

import io
import logging

from core.errors import IngestError
from ingest.limits import IngestLimits
from ingest.loaders.base import LoadResult, check_size, single
from ingest.normalize import normalize_text
from ingest.sources import SourceFile

log = logging.getLogger(__name__)
_TAIL_BYTES = 2048  # %%EOF must sit near the end; pypdf would silently rebuild a truncated file


def load_pdf(file: SourceFile, limits: IngestLimits) -> LoadResult:
    data = _read(file, limits)
    if b"%PDF-" not in data[:1024]:
        raise IngestError("not a PDF (no %PDF- header)")
    if b"%%EOF" not in data[-_TAIL_BYTES:]:
        raise IngestError("corrupt PDF: truncated (no %%EOF trailer)")
    pages, title = _extract(file, data, limits)
    texts = [normalize_text(page) for page in pages]
    body, starts = _join_pages(texts)
    if not body:
        raise IngestError("PDF has no extractable text (scanned images need OCR, which is not supported)")
    return single(file, body, title, {"pages": len(pages), "page_starts": starts})


def _read(file: SourceFile, limits: IngestLimits) -> bytes:
    check_size(file.path, limits)
    try:
        return file.path.read_bytes()
    except OSError as err:
        raise IngestError(f"unreadable: {err.strerror or err}") from err


def _extract(file: SourceFile, data: bytes, limits: IngestLimits) -> tuple[list[str], str]:
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError("encrypted PDF (a password is needed)")
        n_pages = len(reader.pages)
        if n_pages > limits.max_pdf_pages:
            raise IngestError(f"{n_pages} pages, over the {limits.max_pdf_pages} limit (IngestLimits.max_pdf_pages)")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str((reader.metadata or {}).get("/Title") or "")
    except IngestError:
        raise
    except Exception as err:  # pypdf raises many types on broken files; any of them means "corrupt"
        log.debug("pypdf failed on %s", file.path, exc_info=True)
        raise IngestError(f"corrupt PDF: {type(err).__name__}: {err}") from err
    return pages, title


def _join_pages(texts: list[str]) -> tuple[str, list[int]]:
    # Pages are already normalised; joining with a blank line keeps the whole normalised (idempotence).
    body, starts, offset = [], [], 0
    for text in texts:
        starts.append(offset)
        if text:
            body.append(text)
            offset += len(text) + 2
    return "\n\n".join(body), starts
