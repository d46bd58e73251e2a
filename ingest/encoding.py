"""Decode the bytes of a text file. In order: a BOM; UTF-16 without a BOM (NUL bytes on one side of every pair);
strict UTF-8; UTF-8 with a few damaged bytes (replaced by U+FFFD); a file of UTF-8 lines and legacy-encoded lines
(each line decoded by its own encoding); else charset-normalizer's guess (GB18030 / GBK / Big5 ...).

Binary and undecodable content raise `IngestError` with a reason the report can show. `LineDecoder` decodes a
record file line by line with the same preferences (a JSONL file is streamed, never decoded whole).
"""

from __future__ import annotations

import codecs
import logging

from core.errors import IngestError

log = logging.getLogger(__name__)

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# GB2312 and GBK are subsets of GB18030: decoding with the superset never loses a character.
_SUPERSET = {"gb2312": "gb18030", "gbk": "gb18030", "hz": "gb18030"}
_PROBE_BYTES = 8192
_MAX_CONTROL_RATIO = 0.10  # share of C0 control bytes (other than \t \n \r \f ESC) above which a file is binary
_MAX_CHAOS = 0.5  # charset-normalizer's mess ratio above which its guess is not trusted
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\x1b")
# UTF-8 with damage: at most 2% of the bytes invalid, and at least 10 good non-ASCII characters for each bad
# sequence (so a Latin-1 or GBK file, whose every non-ASCII byte is invalid UTF-8, is never taken for one).
_MAX_DAMAGED_RATIO = 0.02
_MIN_GOOD_PER_BAD = 10
_MIXED_MIN_UTF8_BYTES = 32  # non-ASCII bytes of valid UTF-8 lines before a file counts as mixed, not legacy


def looks_binary(data: bytes) -> bool:
    """NUL bytes or many control bytes in the first 8 KiB (an image, an archive, an executable)."""
    probe = data[:_PROBE_BYTES]
    if b"\x00" in probe:
        return True
    controls = sum(1 for b in probe if b < 32 and b not in _TEXT_CONTROLS)
    return controls > _MAX_CONTROL_RATIO * max(len(probe), 1)


def decode_text(data: bytes) -> tuple[str, str]:
    """Return (text, encoding). Raises IngestError for empty, binary or undecodable content."""
    if not data.strip():
        raise IngestError("empty file")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode(data, encoding), encoding
    if (utf16 := _utf16_without_bom(data)) is not None:
        return utf16
    if looks_binary(data):
        raise IngestError("binary content, not text (NUL or control bytes)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    return _damaged_utf8(data) or _mixed_lines(data) or _guess(data)


class LineDecoder:
    """Decodes the lines of one file: UTF-8, else the legacy encoding guessed from the first line that is not."""

    def __init__(self) -> None:
        self.legacy: str | None = None

    def decode(self, line: bytes) -> str:
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            pass
        if (damaged := _damaged_utf8(line)) is not None:
            return damaged[0]
        self.legacy = self.legacy or _guess(line)[1]
        return _decode(line, self.legacy)


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """UTF-16 text that lost its BOM: its ASCII characters leave NUL bytes all on one side of their pairs."""
    probe = data[: _PROBE_BYTES & ~1]
    if len(data) % 2 or b"\x00" not in probe:
        return None
    even, odd = probe[0::2].count(0), probe[1::2].count(0)
    for encoding, nuls, others in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if nuls >= 4 and others <= nuls // 8:  # a few on the other side: CJK characters U+xx00 (一 is U+4E00)
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                continue
            sample = text[:4096]
            if sum(ch.isprintable() or ch in "\t\n\r\f" for ch in sample) >= 0.98 * len(sample):
                return text, encoding
    return None


def _damaged_utf8(data: bytes) -> tuple[str, str] | None:
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    good = len(text) - len(text.encode("ascii", "ignore")) - bad  # non-ASCII characters, counted in C
    if bad <= _MAX_DAMAGED_RATIO * len(data) and good >= _MIN_GOOD_PER_BAD * bad:
        log.debug("UTF-8 with %d invalid sequences replaced by U+FFFD", bad)
        return text, "utf-8 (damaged bytes replaced)"
    return None


def _mixed_lines(data: bytes) -> tuple[str, str] | None:
    """Lines of UTF-8 and lines of one legacy encoding in one file (two files concatenated, an edited copy)."""
    lines = data.split(b"\n")
    decoded: list[str | None] = []
    utf8_bytes = 0
    for line in lines:
        try:
            decoded.append(line.decode("utf-8"))
            utf8_bytes += 0 if line.isascii() else len(line)
        except UnicodeDecodeError:
            decoded.append(None)
    if utf8_bytes < _MIXED_MIN_UTF8_BYTES:
        return None  # no real UTF-8 line: a legacy file, which the guess reads whole
    legacy = _guess(b"\n".join(line for line, text in zip(lines, decoded, strict=True) if text is None))[1]
    texts = [text if text is not None else _decode(line, legacy) for line, text in zip(lines, decoded, strict=True)]
    return "\n".join(texts), f"utf-8+{legacy}"


def _guess(data: bytes) -> tuple[str, str]:
    from charset_normalizer import from_bytes  # import here: only non-UTF-8 files pay for it

    match = from_bytes(data).best()
    if match is None or match.chaos > _MAX_CHAOS:
        raise IngestError("undecodable text: neither UTF-8 nor a known encoding (GB18030, GBK, Big5 ...) fits")
    encoding = _SUPERSET.get(match.encoding, match.encoding)
    log.debug("detected encoding %s (chaos %.2f)", encoding, match.chaos)
    return _decode(data, encoding), encoding


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as err:
        raise IngestError(f"undecodable text as {encoding}: {err}") from err
