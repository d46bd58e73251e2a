"""Text normalisation: full-width ASCII to half-width, whitespace, control characters.

Deliberately not full NFKC: Chinese text (and statute text above all) is written with full-width Chinese
punctuation (，。！？；：（）), and the statute splitter keys on `（一）` items, so those are kept. What changes:
- full-width forms of ASCII letters, digits and symbols (U+FF01..U+FF5E) become ASCII, e.g. `ＡＢＣ１２３％` ->
  `ABC123%`, except the Chinese punctuation in `KEPT_FULL_WIDTH`;
- the ideographic space U+3000, NBSP and other Unicode spaces become a plain space; runs of spaces collapse to one;
- control characters (except newline and tab) and invisible format characters are removed: zero-width characters,
  bidi embeddings / overrides / isolates / marks (the "Trojan Source" reordering trick), invisible math operators
  and Unicode tag characters (U+E0000..U+E007F, text that renders as nothing, used to smuggle instructions to a
  model); they carry no meaning a reader sees, so removing them before chunking keeps every offset consistent;
- CR/CRLF and the Unicode line / paragraph separators (U+2028 / U+2029) become LF;
- each line is stripped, and runs of blank lines collapse to one blank line (paragraphs survive: statute clauses
  (款) are one per line).
"""

from __future__ import annotations

import re

# Bumped whenever the output of `normalize_text` changes: the manifest re-ingests everything on a new version.
NORMALIZE_VERSION = 2  # 2: bidi controls, invisible operators, tag characters removed; U+2028 / U+2029 -> LF

# Full-width punctuation that belongs to Chinese typesetting and stays full-width.
KEPT_FULL_WIDTH = frozenset("！，：；？（）")

_FULL_TO_HALF = {
    code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F) if chr(code) not in KEPT_FULL_WIDTH
}
_SPACES = {ord(c): " " for c in "\u3000\u00a0\u2002\u2003\u2009\u202f\u205f\t\v\f"}
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_INVISIBLE_OPERATORS = "\u2061\u2062\u2063\u2064"
_TAG_CHARACTERS = range(0xE0000, 0xE0080)
_REMOVED = {ord(c): None for c in _ZERO_WIDTH + _BIDI + _INVISIBLE_OPERATORS} | dict.fromkeys(_TAG_CHARACTERS)
_LINE_SEPARATORS = {0x2028: "\n", 0x2029: "\n"}
_TABLE = {**_FULL_TO_HALF, **_SPACES, **_REMOVED, **_LINE_SEPARATORS}

# C0 and C1 control characters except newline (tab, VT and FF were already mapped to a space above).
_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_RUN_OF_SPACES = re.compile(r" {2,}")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """Return the normalised form of `text` (idempotent: normalize_text(normalize_text(t)) == normalize_text(t))."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.translate(_TABLE)
    text = _CONTROLS.sub("", text)
    text = _RUN_OF_SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def normalize_title(title: str) -> str:
    """A title is one line: normalised, with newlines folded into spaces."""
    return _RUN_OF_SPACES.sub(" ", normalize_text(title).replace("\n", " "))
