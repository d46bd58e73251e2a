"""Plain text and Markdown: one file -> one Document; the title is the first Markdown heading or the file name."""

from __future__ import annotations

import re

from ingest.encoding import decode_text
from ingest.loaders.base import LoadResult, read_bytes, single
from ingest.sources import SourceFile

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def load_text(file: SourceFile) -> LoadResult:
    text, encoding = decode_text(read_bytes(file.path))
    title = ""
    if file.format == "md" and (match := _HEADING.search(text)):
        title = match.group(1)
    return single(file, text, title, {"encoding": encoding})
