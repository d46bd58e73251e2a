"""Record formats (JSONL, CSV): one record -> one Document, by the source's field mapping.

doc_id from `id_field` (else `<file>#L<line>`), text from `text_field`, the title from `title_fields` joined with a
space ("中华人民共和国刑法 第二百六十四条"), metadata from `metadata_fields`. A bad record is skipped with its line
number; the rest of the file goes on. JSONL is streamed line by line within `IngestLimits` (`loaders/lines.py`);
CSV is read whole, within `IngestLimits.max_file_bytes`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

from core.errors import IngestError
from ingest.encoding import LineDecoder, decode_text
from ingest.limits import IngestLimits, size_text
from ingest.loaders.base import LoadResult, make_document, read_bytes
from ingest.loaders.lines import read_lines
from ingest.report import SkippedItem
from ingest.sources import SourceFile

Record = tuple[int, Any, str | None]  # (line number, parsed record or None, why it is skipped or None)
LISTED_SKIPS = 100  # bad records listed by line per file; the rest are counted (2M bad lines are not 2M items)
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def load_jsonl(file: SourceFile, limits: IngestLimits) -> LoadResult:
    try:
        with file.path.open("rb") as fh:
            head = fh.read(4)
    except OSError as err:
        raise IngestError(f"unreadable: {err.strerror or err}") from err
    if head.startswith(_WIDE_BOMS):  # UTF-16 / UTF-32 lines cannot be split on the byte b"\n": decode it whole
        return _load(file, _json_lines(decode_text(read_bytes(file.path, limits))[0]), limits)
    return _load(file, _jsonl_records(file, limits), limits)


def load_csv(file: SourceFile, limits: IngestLimits) -> LoadResult:
    return _load(file, _csv_records(decode_text(read_bytes(file.path, limits))[0]), limits)


def _jsonl_records(file: SourceFile, limits: IngestLimits) -> Iterator[Record]:
    decoder = LineDecoder()
    for number, line in read_lines(file.path, limits):
        if isinstance(line, int):
            yield number, None, (f"line of {size_text(line)}, over the {size_text(limits.max_record_bytes)} limit "
                                 "for one record (IngestLimits.max_record_bytes)")
        elif line.strip():
            try:
                text = decoder.decode(line)
            except IngestError as err:
                yield number, None, str(err)
                continue
            yield _parse(number, text.removeprefix("\ufeff") if number == 1 else text)


def _json_lines(text: str) -> Iterator[Record]:
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield _parse(number, line)


def _parse(number: int, line: str) -> Record:
    try:
        return number, json.loads(line), None
    except json.JSONDecodeError as err:
        return number, None, f"malformed JSON: {err.msg} at column {err.colno}"
    except RecursionError:
        return number, None, "malformed JSON: nested too deeply"
    except ValueError as err:  # an integer of more than 4300 digits (Python's int conversion limit)
        return number, None, f"malformed JSON: {err}"


def _csv_records(text: str) -> Iterator[Record]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    number = 1
    try:
        # Line numbers count the header as line 1, as a spreadsheet shows them.
        for number, row in enumerate(reader, start=2):  # noqa: B007 - `number` names the line of a csv.Error
            yield number, row, None
    except csv.Error as err:  # e.g. a field over the csv module's 131072-character limit
        raise IngestError(f"malformed CSV, line {number + 1}: {err}") from err


def _load(file: SourceFile, records: Iterator[Record], limits: IngestLimits) -> LoadResult:
    documents, skipped, unlisted, count = [], [], 0, 0
    for line, record, error in records:
        count += 1
        if count > limits.max_records:
            raise IngestError(f"more than {limits.max_records} records, over the limit for one file "
                              "(IngestLimits.max_records): split it")
        if error is None and not isinstance(record, Mapping):
            error = f"not an object but {type(record).__name__}"
        if error is None:
            try:
                documents.append(_document(file, line, record))
            except IngestError as err:
                error = str(err)
        if error is not None and len(skipped) < LISTED_SKIPS:
            skipped.append(SkippedItem(f"{file.key}:{line}", error))
        elif error is not None:
            unlisted += 1
    if unlisted:
        skipped.append(SkippedItem(file.key, f"{unlisted} more bad records, not listed one by one"))
    if not documents and not skipped:
        raise IngestError("empty file: no records")
    if not documents:
        raise IngestError(f"no usable record ({len(skipped) - bool(unlisted) + unlisted} skipped; "
                          f"first: {skipped[0].reason})")
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
