"""What every loader shares: the result type, reading (maybe gzipped) bytes, and building a normalised Document."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.errors import IngestError
from core.records import Document
from ingest.normalize import normalize_text, normalize_title
from ingest.report import SkippedItem
from ingest.sources import SourceFile

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class LoadResult:
    documents: tuple[Document, ...]
    skipped: tuple[SkippedItem, ...] = field(default=())


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (by its magic number, whatever its name)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise IngestError(f"unreadable: {err.strerror or err}") from err
    if data.startswith(_GZIP_MAGIC):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise IngestError(f"corrupt gzip: {err}") from err
    return data


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
        title=normalize_title(title),
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
