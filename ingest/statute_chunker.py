"""Statute chunking: an article is one chunk; a longer article splits at its clauses, then at sentences.

The structure of a PRC statute article: 款 (paragraphs) are separate lines; 项 (items) are `（一）…（二）…`, on their
own lines or inline after a colon or semicolon. Clauses are packed greedily up to `max_chars`, so an item list
stays with its lead-in when it fits. A clause longer than `max_chars` falls back to sentences (。！？；), and an
over-long sentence to a cut at a comma. It lives in ingest (not domains/legal) because every domain may use the
`statute` strategy: medical and finance also ship statutes.
"""

from __future__ import annotations

import re

from ingest.segment import Span, pack, sentence_spans

# An inline item marker （一） .. （二十） after a colon, semicolon or full stop.
_INLINE_ITEM = re.compile(r"(?<=[：；。])(?=（[一二三四五六七八九十]+）)")


def clause_spans(text: str) -> list[Span]:
    """Spans of the 款 and 项 of an article; they cover the text without gaps."""
    cuts = {0, len(text)}
    for match in re.finditer(r"\n+", text):
        cuts.add(match.end())
    for match in _INLINE_ITEM.finditer(text):
        cuts.add(match.start())
    ordered = sorted(cuts)
    return [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b > a]


def statute_spans(text: str, max_chars: int, overlap_chars: int = 0) -> list[Span]:
    """Chunk spans of one article."""
    if len(text) <= max_chars:
        return [(0, len(text))]
    units: list[Span] = []
    for start, end in clause_spans(text):
        if end - start > max_chars:
            units += sentence_spans(text, start, end)
        else:
            units.append((start, end))
    return pack(text, units, max_chars, overlap_chars)
