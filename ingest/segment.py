"""Sentence spans and span packing: the primitives both chunking strategies are built from.

A span is `(start, end)` into one text; spans from `sentence_spans` cover the text without gaps, so packing
consecutive spans gives a chunk whose text is exactly `text[start:end]`.
"""

from __future__ import annotations

import re

Span = tuple[int, int]

# A sentence ends at 。！？； (or their ASCII forms, or a period before a space), with any closing quotes or
# brackets that follow it, or at a line break.
_SENTENCE_END = re.compile(r"(?:[。！？；!?;…]+|\.(?=\s))[」』”’）)\]]*\n*|\n+")
# Soft places to cut a sentence that is longer than a chunk: after a comma, an enumeration comma, a colon, a space.
_SOFT_BREAKS = "，、,：: "


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Spans of the sentences of `text[start:end]`; they cover the range without gaps."""
    end = len(text) if end is None else end
    spans, begin = [], start
    for match in _SENTENCE_END.finditer(text, start, end):
        if match.end() > begin:
            spans.append((begin, match.end()))
            begin = match.end()
    if begin < end:
        spans.append((begin, end))
    return spans


def hard_split(text: str, span: Span, max_chars: int) -> list[Span]:
    """Cut a span longer than `max_chars`, preferring a soft break in the second half of each window."""
    start, end = span
    pieces = []
    while end - start > max_chars:
        window = text[start + max_chars // 2 : start + max_chars]
        cut = max(window.rfind(c) for c in _SOFT_BREAKS)
        stop = start + max_chars // 2 + cut + 1 if cut >= 0 else start + max_chars
        pieces.append((start, stop))
        start = stop
    pieces.append((start, end))
    return pieces


def pack(text: str, units: list[Span], max_chars: int, overlap_chars: int = 0) -> list[Span]:
    """Greedily join consecutive units into spans of at most `max_chars`; each next span starts with the trailing
    units of the previous one that fit in `overlap_chars` (whole units only, never a cut sentence)."""
    units = [piece for unit in units for piece in hard_split(text, unit, max_chars)]
    spans: list[Span] = []
    i = 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and units[j + 1][1] - units[i][0] <= max_chars:
            j += 1
        spans.append((units[i][0], units[j][1]))
        if j == len(units) - 1:
            break
        i = _overlap_start(units, i, j, max_chars, overlap_chars)
    return spans


def _overlap_start(units: list[Span], i: int, j: int, max_chars: int, overlap_chars: int) -> int:
    """The first unit of the next span: as far back as the overlap allows, while the span still grows past j."""
    nxt = j + 1
    while nxt - 1 > i and units[j][1] - units[nxt - 1][0] <= overlap_chars:
        if units[j + 1][1] - units[nxt - 1][0] > max_chars:
            break
        nxt -= 1
    return nxt


def trim(text: str, span: Span) -> Span:
    """Shrink a span so it neither starts nor ends with whitespace."""
    start, end = span
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
