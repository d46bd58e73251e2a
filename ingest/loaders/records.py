"""Record formats (JSONL, CSV): one record -> one Document, by the source's field mapping.

doc_id from `id_field` (else `<file>#L<line>`), text from `text_field`, the title from `title_fields` joined with a
space ("中华人民共和国刑法 第二百六十四条"), metadata from `metadata_fields`. A bad record is skipped with its line
number; the rest of the file goes on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

from core.errors import IngestError
from ingest.encoding import decode_text
from ingest.loaders.base import LoadResult, make_document, read_bytes
from ingest.report import SkippedItem
from ingest.sources import SourceFile


def load_jsonl(file: SourceFile) -> LoadResult:
    return _load(file, _jsonl_records(_text(file)))


def load_csv(file: SourceFile) -> LoadResult:
    reader = csv.DictReader(io.StringIO(_text(file), newline=""))
    # Line numbers count the header as line 1, as a spreadsheet shows them.
    return _load(file, ((n, row, None) for n, row in enumerate(reader, start=2)))


def _text(file: SourceFile) -> str:
    text, _ = decode_text(read_bytes(file.path))
    return text


def _jsonl_records(text: str) -> Iterator[tuple[int, Any, str | None]]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line), None
        except json.JSONDecodeError as err:
            yield n, None, f"malformed JSON: {err.msg} at column {err.colno}"


def _load(file: SourceFile, records: Iterator[tuple[int, Any, str | None]]) -> LoadResult:
    documents, skipped = [], []
    for line, record, error in records:
        where = f"{file.key}:{line}"
        if error is None and not isinstance(record, Mapping):
            error = f"not an object but {type(record).__name__}"
        if error is None:
            try:
                documents.append(_document(file, line, record))
            except IngestError as err:
                error = str(err)
        if error is not None:
            skipped.append(SkippedItem(where, error))
    if not documents and not skipped:
        raise IngestError("empty file: no records")
    if not documents:
        raise IngestError(f"no usable record ({len(skipped)} skipped; first: {skipped[0].reason})")
    return LoadResult(tuple(documents), tuple(skipped))


def _document(file: SourceFile, line: int, record: Mapping[str, Any]):
    spec = file.spec
    text = record.get(spec.text_field)
    if not isinstance(text, str):
        raise IngestError(f"no text field {spec.text_field!r}" if text is None else f"{spec.text_field!r} is not text")
    raw_id = record.get(spec.id_field)
    doc_id = str(raw_id) if raw_id not in (None, "") else f"{file.doc_base}#L{line}"
    title = " ".join(str(record[f]) for f in spec.title_fields if record.get(f) not in (None, ""))
    metadata = {f: record[f] for f in spec.metadata_fields if f in record}
    doc = make_document(file, doc_id, text, title, metadata)
    if doc is None:
        raise IngestError("empty text")
    return doc
