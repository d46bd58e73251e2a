"""Decode the bytes of a text file: BOM, then strict UTF-8, then charset-normalizer (GB18030 / GBK / Big5 ...).

Binary and undecodable content raise `IngestError` with a reason the report can show.
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
    if looks_binary(data):
        raise IngestError("binary content, not text (NUL or control bytes)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    return _guess(data)


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
