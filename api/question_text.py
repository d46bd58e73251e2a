"""What a question may hold. A question (a search query, a chat turn) goes to the retriever, into the prompt, into
the audit log and, through feedback, into training data; characters a reader does not see must not make it say
there something other than what its author was shown. Per class:

- NUL is refused: nobody types one; it comes from binary data pasted or sent as text, or from a probe for code that
  ends a string at the first NUL (C libraries, log viewers).
- format characters (Unicode category Cf) are removed: zero-width spaces and joiners, the BOM, bidi embeddings,
  overrides, isolates and marks (U+202A..U+202E, U+2066..U+2069: the "Trojan Source" reordering, text shown in
  one order and read in another), invisible operators and tag characters (U+E0000.., which render as nothing and
  smuggle instructions to a model). Nearly all render as nothing, and ingest removes the same ones from the corpus
  (ingest/normalize.py), so a cleaned question also matches its passages' text.
- the other control characters are removed (C0 but tab and newline, DEL, C1: terminal escapes in a log, for one);
  CR, CRLF and the line / paragraph separators U+2028 / U+2029 become a newline, VT and FF a space.
"""

from __future__ import annotations

import functools
import unicodedata

# Every Cf and Cc character lies in planes 0, 1 and 14 (Unicode 15); scanning those three is 3 x 65,536 lookups.
_PLANES = (0, 1, 14)
_KEPT = {"\t": "\t", "\n": "\n", "\r": "\n", "\v": " ", "\f": " ", "\u2028": "\n", "\u2029": "\n"}


@functools.cache
def _table() -> dict[int, str | None]:
    """The `str.translate` table: built on first use (tens of ms), not at import."""
    removed = (c for plane in _PLANES for c in range(plane << 16, (plane + 1) << 16)
               if unicodedata.category(chr(c)) in ("Cf", "Cc"))
    return dict.fromkeys(removed) | {ord(c): kept for c, kept in _KEPT.items()}


def clean_question(text: str) -> str:
    """`text` without invisible formatting and control characters; ValueError (with the reason) when it holds a
    NUL. Whitespace is not stripped here: the fields that want it stripped do that themselves."""
    if "\x00" in text:
        raise ValueError(f"holds a NUL character (\\x00) at position {text.index(chr(0))}: send text, not binary data")
    return text.replace("\r\n", "\n").translate(_table())
