"""HTML: visible text (scripts, styles and templates dropped); block elements end a line, inline elements (<b>,
<a>, <span> ...) stay inside their sentence; title from <title>."""

from __future__ import annotations

from ingest.encoding import decode_text
from ingest.loaders.base import LoadResult, read_bytes, single
from ingest.sources import SourceFile

_INVISIBLE = ("script", "style", "noscript", "template", "head")
_BLOCKS = (
    "p", "div", "li", "dt", "dd", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "table", "ul", "ol",
    "section", "article", "header", "footer", "blockquote", "pre", "title", "caption", "figcaption",
)  # fmt: skip
_CELLS = ("td", "th")


def load_html(file: SourceFile) -> LoadResult:
    from bs4 import BeautifulSoup

    markup, encoding = decode_text(read_bytes(file.path))
    soup = BeautifulSoup(markup, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_INVISIBLE):
        tag.decompose()
    for row in soup("tr"):
        for cell in row(_CELLS, recursive=False)[1:]:
            cell.insert_before(" | ")  # cells of a row on one line, as the docx loader writes them
    for tag in soup(_BLOCKS):
        tag.append("\n")  # the line structure is what the sentence and clause splitters see
    return single(file, soup.get_text(), title, {"encoding": encoding})
