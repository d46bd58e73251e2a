"""HTML: visible text (scripts, styles and templates dropped); block elements end a line, inline elements (<b>,
<a>, <span> ...) stay inside their sentence; title from <title>.

The text is gathered by one iterative walk over the parsed tree, without editing it: a page nested 100,000 levels
deep must neither recurse nor pay for each edit with a walk to the bottom of the tree (appending a newline to every
block of such a page took minutes). The tag count is capped before parsing (`IngestLimits.max_markup_tags`):
BeautifulSoup keeps about 1 KB per tag.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core.errors import IngestError
from ingest.encoding import decode_text
from ingest.limits import IngestLimits
from ingest.loaders.base import LoadResult, read_bytes, single
from ingest.sources import SourceFile

_INVISIBLE = frozenset(("script", "style", "noscript", "template", "head"))
_BLOCKS = frozenset((
    "p", "div", "li", "dt", "dd", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "table", "ul", "ol",
    "section", "article", "header", "footer", "blockquote", "pre", "title", "caption", "figcaption",
))  # fmt: skip
_CELLS = frozenset(("td", "th"))
_CELL_SEPARATOR = " | "  # cells of a row on one line, as the docx loader writes them


def load_html(file: SourceFile, limits: IngestLimits) -> LoadResult:
    from bs4 import BeautifulSoup

    raw = read_bytes(file.path, limits)
    tags = raw.count(b"<")  # an upper bound on the tags, counted before anything is built
    if tags > limits.max_markup_tags:
        raise IngestError(f"about {tags} tags, over the {limits.max_markup_tags} limit (IngestLimits.max_markup_tags)")
    markup, encoding = decode_text(raw)
    soup = BeautifulSoup(markup, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    return single(file, visible_text(soup), title, {"encoding": encoding})


class _Frame:
    """One open element of the walk: its remaining children, what closes it, and (for a row) its cells so far."""

    __slots__ = ("cells", "children", "close", "row")

    def __init__(self, children: Iterator[Any], close: str, row: bool) -> None:
        self.children, self.close, self.row, self.cells = children, close, row, 0


def visible_text(root: Any) -> str:
    """The text `root.get_text()` gives once invisible elements are dropped, a newline ends each block element and
    " | " goes before every cell of a row but the first."""
    from bs4.element import Tag

    strings = root.interesting_string_types  # NavigableString and CData: not comments, doctypes, ruby text
    out: list[str] = []
    stack = [_Frame(iter(root.contents), "", False)]
    while stack:
        frame = stack[-1]
        node = next(frame.children, None)
        if node is None:
            stack.pop()
            out.append(frame.close)
        elif not isinstance(node, Tag):
            if type(node) in strings:
                out.append(str(node))
        elif node.name not in _INVISIBLE:
            if frame.row and node.name in _CELLS:
                out.append(_CELL_SEPARATOR if frame.cells else "")
                frame.cells += 1
            stack.append(_Frame(iter(node.contents), "\n" if node.name in _BLOCKS else "", node.name == "tr"))
    return "".join(out)
