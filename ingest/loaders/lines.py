"""Stream the lines of a (maybe gzipped) record file within `IngestLimits`, never holding more than one line.

    for number, line in read_lines(path, limits):  # line: the bytes without "\n", or an int: the size of a line
        ...                                          # over max_record_bytes, which was read in pieces and dropped

Splitting on b"\n" only (not `str.splitlines`) is deliberate: U+2028 and U+2029 may stand raw inside a JSON string,
and splitlines would cut such a record in two. A file of more than `max_records` lines (blank ones too) or
`max_stream_bytes` (inflated), or a gzip that inflates faster than `max_inflate_ratio` once 8 MiB are out, is
refused (`IngestError`): a bomb costs that much and no more.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

from core.errors import IngestError
from ingest.limits import MIB, IngestLimits, size_text

_GZIP_MAGIC = b"\x1f\x8b"
_PIECE = MIB  # an overlong line is read and dropped this much at a time
_RATIO_AFTER = 8 * MIB  # inflated bytes before the ratio is judged (a small file may compress very well)


def read_lines(path: Path, limits: IngestLimits) -> Iterator[tuple[int, bytes | int]]:
    with ExitStack() as stack:
        try:
            raw = stack.enter_context(path.open("rb"))
        except OSError as err:
            raise IngestError(f"unreadable: {err.strerror or err}") from err
        gzipped = raw.peek(2)[:2] == _GZIP_MAGIC
        stream: BinaryIO = stack.enter_context(gzip.GzipFile(fileobj=raw)) if gzipped else raw  # type: ignore[assignment]
        try:
            yield from _lines(stream, _Meter(raw if gzipped else None, limits), limits.max_record_bytes)
        except (OSError, EOFError, zlib.error) as err:
            raise IngestError(f"corrupt gzip: {err}" if gzipped else f"unreadable: {err}") from err


def _lines(stream: BinaryIO, meter: _Meter, max_bytes: int) -> Iterator[tuple[int, bytes | int]]:
    number = 0
    while line := stream.readline(max_bytes + 2):  # + "\r\n"
        number += 1
        meter.add(len(line), number)
        if not line.endswith(b"\n") and len(line) > max_bytes:
            yield number, len(line) + _drop_rest(stream, meter)
            continue
        line = line[:-1] if line.endswith(b"\n") else line
        line = line[:-1] if line.endswith(b"\r") else line
        yield number, (line if len(line) <= max_bytes else len(line))


def _drop_rest(stream: BinaryIO, meter: _Meter) -> int:
    """Read the rest of an overlong line in pieces, keeping none of it; returns how many bytes that was."""
    dropped = 0
    while piece := stream.readline(_PIECE):
        dropped += len(piece)
        meter.add(len(piece), 0)
        if piece.endswith(b"\n"):
            break
    return dropped


class _Meter:
    """Counts the bytes read (inflated) and refuses a stream over the limits."""

    def __init__(self, compressed: BinaryIO | None, limits: IngestLimits) -> None:
        self.compressed, self.limits = compressed, limits
        self.total = 0
        self.next_check = _RATIO_AFTER

    def add(self, n: int, line: int) -> None:
        self.total += n
        if line > self.limits.max_records:  # blank lines count too: 500 MB of newlines is no free ride
            raise IngestError(f"more than {self.limits.max_records} lines, over the limit for one file "
                              "(IngestLimits.max_records): split it")
        if self.total > self.limits.max_stream_bytes:
            raise IngestError(f"more than {size_text(self.limits.max_stream_bytes)} of records, over the limit for "
                              "one file (IngestLimits.max_stream_bytes): split it")
        if self.compressed is not None and self.total >= self.next_check:
            self.next_check += MIB
            ratio = self.total // max(self.compressed.tell(), 1)
            if ratio > self.limits.max_inflate_ratio:
                raise IngestError(f"gzip inflates {ratio}:1, over the {self.limits.max_inflate_ratio}:1 limit "
                                  "(IngestLimits.max_inflate_ratio): a zip bomb?")
