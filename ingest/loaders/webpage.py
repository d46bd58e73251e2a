"""HTML: visible text (scripts, styles and templates dropped), blocks on their own lines; title from <title>."""

from __future__ import annotations

from ingest.encoding import decode_text
from ingest.loaders.base import LoadResult, read_bytes, single
from ingest.sources import SourceFile

_INVISIBLE = ("script", "style", "noscript", "template", "head")


def load_html(file: SourceFile) -> LoadResult:
    from bs4 import BeautifulSoup

    markup, encoding = decode_text(read_bytes(file.path))
    soup = BeautifulSoup(markup, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_INVISIBLE):
        tag.decompose()
    # Newline separators keep block structure (paragraphs, list items, table cells) for the sentence splitter.
    text = soup.get_text("\n")
    return single(file, text, title, {"encoding": encoding})
