"""Byte-level builders for hostile files, written at test time (nothing large is committed): deflate bombs that
cost a few MB on disk and inflate to gigabytes, hand-built zips (DOCX) and PDFs whose every byte we choose.

A bomb is made without compressing gigabytes: deflating one block with a full flush resets the compressor, so the
same block compresses to the same bytes every time and is simply repeated (a raw deflate stream of N identical
blocks, then a final empty block). Its checksum (CRC-32 / Adler-32) is left zero: a reader that gets far enough to
check it has already inflated everything, which is the failure under test.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


def deflate_repeated(block: bytes, times: int) -> bytes:
    """A raw deflate stream that inflates to `block * times`."""
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = first.compress(block) + first.flush(zlib.Z_FULL_FLUSH)
    again = first.compress(block) + first.flush(zlib.Z_FULL_FLUSH)
    assert one[-4:] == again[-4:] and len(again) <= len(one)  # after a full flush, blocks repeat byte for byte
    return one + again * (times - 1) + first.flush(zlib.Z_FINISH)


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


@dataclass(frozen=True)
class ZipMember:
    name: str
    raw: bytes  # raw deflate stream (or stored bytes when `stored`)
    size: int  # inflated size declared in the headers
    crc: int = 0
    stored: bool = False


def member(name: str, data: bytes) -> ZipMember:
    """An honest member: its real deflate stream, size and CRC."""
    return ZipMember(name, deflate(data), len(data), zlib.crc32(data))


def write_zip(path: Path, members: list[ZipMember]) -> Path:
    """A zip file (no zip64: every size < 4 GiB) with exactly the headers given."""
    out, central = bytearray(), bytearray()
    for m in members:
        name, method = m.name.encode("utf-8"), 0 if m.stored else 8
        offset = len(out)
        fields = (20, 0x800, method, 0, 0x21, m.crc, len(m.raw), m.size, len(name), 0)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + name + m.raw
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, offset) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    path.write_bytes(bytes(out + central) + end)
    return path


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
DOC_HEAD = f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W_NS}"><w:body>'
DOC_TAIL = "</w:body></w:document>"


def docx_paragraphs(texts: list[str]) -> str:
    return DOC_HEAD + "".join(f"<w:p><w:r><w:t>{t}</w:t></w:r></w:p>" for t in texts) + DOC_TAIL


def write_docx(path: Path, document_xml: ZipMember | str, extra: list[ZipMember] | None = None) -> Path:
    body = member("word/document.xml", document_xml.encode()) if isinstance(document_xml, str) else document_xml
    parts = [member("[Content_Types].xml", CONTENT_TYPES.encode()), member("_rels/.rels", RELS.encode()), body]
    return write_zip(path, parts + (extra or []))


def docx_bomb(path: Path, inflated: int, *, declared: int | None = None) -> Path:
    """A DOCX whose document.xml inflates to ~`inflated` bytes of one repeated paragraph; its headers declare
    `declared` bytes (default: the truth)."""
    block = ("<w:p><w:r><w:t>" + "炸" * 300 + "</w:t></w:r></w:p>").encode() * 100
    times = max(1, inflated // len(block))
    stream = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = stream.compress(DOC_HEAD.encode()) + stream.flush(zlib.Z_FULL_FLUSH)
    one = stream.compress(block) + stream.flush(zlib.Z_FULL_FLUSH)
    raw = head + one * times + stream.compress(DOC_TAIL.encode()) + stream.flush(zlib.Z_FINISH)
    size = len(DOC_HEAD) + len(block) * times + len(DOC_TAIL)
    return write_docx(path, ZipMember("word/document.xml", raw, size if declared is None else declared))


def gzip_repeated(block: bytes, times: int) -> bytes:
    """A gzip file that inflates to `block * times` (CRC left zero, see the module doc)."""
    size = (len(block) * times) % 2**32
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + deflate_repeated(block, times) + struct.pack("<II", 0, size)


# -- PDF ------------------------------------------------------------------------------------------------------------
PDF_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def pdf_stream(content: bytes, extra: bytes = b"", length: int | None = None) -> bytes:
    n = len(content) if length is None else length
    return b"<< /Length %d %s>>\nstream\n" % (n, extra) + content + b"\nendstream"


def text_page(parent: int, contents: int, font: int) -> bytes:
    return (b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> "
            b"/Contents %d 0 R >>" % (parent, font, contents))


def text_ops(*lines: str) -> bytes:
    body = b"".join(b"(%s) Tj T* " % line.encode("latin-1") for line in lines)
    return b"BT /F1 12 Tf 14 TL 72 720 Td " + body + b"ET"


def pdf_bytes(objects: list[bytes], *, xref: bool = True, bad_offsets: bool = False) -> bytes:
    """A PDF of `objects` (object n is objects[n-1]; object 1 is the catalog) with a classic xref table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    start = len(out)
    if xref:
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        for off in offsets:
            out += b"%010d 00000 n \n" % ((off * 7 + 13) if bad_offsets else off)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, start)
    return bytes(out)


def simple_pdf(*lines: str, kids: bytes = b"[3 0 R]", count: int = 1, contents: bytes | None = None) -> list[bytes]:
    """Catalog, pages, one text page, its content stream, a font: the objects of a one-page text PDF."""
    ops = text_ops(*lines) if contents is None else contents
    return [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids %s /Count %d >>" % (kids, count),
            text_page(2, 4, 5), pdf_stream(ops), PDF_FONT]


def write_sparse_pdf(path: Path, size: int) -> Path:
    """A structurally valid PDF of `size` bytes, almost all of it one content stream of zero bytes, written
    sparse (seek past the hole): a 200 MB file costs no disk and no time to make."""
    head = b"%PDF-1.4\n"
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            text_page(2, 4, 5)]
    body = bytearray(head)
    offsets = []
    for n, obj in enumerate(objs, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    tail_reserve = 400
    hole = size - len(body) - tail_reserve
    offsets.append(len(body))
    stream_head = b"4 0 obj\n<< /Length %d >>\nstream\n" % hole
    with path.open("wb") as fh:
        fh.write(bytes(body) + stream_head)
        fh.seek(hole, 1)
        after = fh.tell()
        tail = b"\nendstream\nendobj\n"
        offsets.append(after + len(tail))
        tail += b"5 0 obj\n" + PDF_FONT + b"\nendobj\n"
        xref_at = after + len(tail)
        tail += b"xref\n0 6\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
        tail += b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref_at
        fh.write(tail)
    return path
