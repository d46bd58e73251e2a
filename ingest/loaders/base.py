"""What every loader shares: the result type, reading (maybe gzipped) bytes, and building a normalised Document."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.errors import IngestError
from core.records import Document
from ingest.limits import IngestLimits, size_text
from ingest.normalize import normalize_text, normalize_title
from ingest.report import SkippedItem
from ingest.sources import SourceFile

_GZIP_MAGIC = b"\x1f\x8b"
TITLE_CHARS = 300  # a longer title (a 5 MB Markdown heading) is cut: every chunk row of the document repeats it


@dataclass(frozen=True, slots=True)
class LoadResult:
    documents: tuple[Document, ...]
    skipped: tuple[SkippedItem, ...] = field(default=())


def check_size(path: Path, limits: IngestLimits) -> int:
    """The file's size on disk; IngestError when it is over the limit for a file read whole."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise IngestError(f"unreadable: {err.strerror or err}") from err
    if size > limits.max_file_bytes:
        raise IngestError(f"file of {size_text(size)}, over the {size_text(limits.max_file_bytes)} limit for a file "
                          "read whole (IngestLimits.max_file_bytes)")
    return size


def read_bytes(path: Path, limits: IngestLimits) -> bytes:
    """The file's bytes, gunzipped when it is gzip (by its magic number, whatever its name); either way no more
    than `limits.max_file_bytes`, so a gzip bomb is refused after inflating that much, not all of it."""
    check_size(path, limits)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise IngestError(f"unreadable: {err.strerror or err}") from err
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            inflated = fh.read(limits.max_file_bytes + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise IngestError(f"corrupt gzip: {err}") from err
    if len(inflated) > limits.max_file_bytes:
        raise IngestError(f"gzip content inflates past the {size_text(limits.max_file_bytes)} limit for a file read "
                          "whole (IngestLimits.max_file_bytes): a zip bomb?")
    return inflated


def make_document(
    file: SourceFile, doc_id: str, text: str, title: str = "", metadata: Mapping[str, Any] | None = None
) -> Document | None:
    """A Document with normalised text and title; None when nothing is left after normalisation."""
    text = normalize_text(text)
    if not text:
        return None
    return Document(
        doc_id=doc_id,
        text=text,
        title=normalize_title(title[: TITLE_CHARS * 4])[:TITLE_CHARS],  # cut before too: normalising costs
        source=file.key,
        metadata=MappingProxyType(dict(metadata or {})),
    )


def single(file: SourceFile, text: str, title: str, metadata: Mapping[str, Any] | None = None) -> LoadResult:
    """The result of a plain file: exactly one document, or IngestError when it holds no text."""
    metadata = {"format": file.format, **(metadata or {})}
    doc = make_document(file, file.doc_base, text, title or file.path.stem, metadata)
    if doc is None:
        raise IngestError("no text in file")
    return LoadResult((doc,))
