"""Hostile PDFs: hand-built, so that exactly the broken part is broken (xref, encryption, page tree, streams)."""

from __future__ import annotations

import io

from hostile_case import Case, text_has, write
from hostile_files import MIB, deflate_repeated, pdf_bytes, pdf_stream, simple_pdf, write_sparse_pdf

LINE = "Hostile inputs are refused with a reason"


def _pdf(**kwargs: object) -> bytes:
    return pdf_bytes(simple_pdf(LINE), **kwargs)  # type: ignore[arg-type]


def _encrypted(user_password: str) -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(_pdf())))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _many_pages(n: int) -> bytes:
    kids = b"[" + b"3 0 R " * n + b"]"
    return pdf_bytes(simple_pdf(LINE, kids=kids, count=n))


def _flate_bomb(inflated: int) -> bytes:
    """A page whose content stream is FlateDecode and inflates to `inflated` bytes of spaces."""
    raw = b"\x78\xda" + deflate_repeated(b" " * MIB, inflated // MIB) + b"\x00\x00\x00\x00"
    objects = simple_pdf(LINE)
    objects[3] = pdf_stream(raw, b"/Filter /FlateDecode ")
    return pdf_bytes(objects)


def _cycle() -> bytes:
    objects = simple_pdf(LINE)
    objects[1] = b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>"  # the page tree contains itself
    return pdf_bytes(objects)


def _declared_length(length: int) -> bytes:
    objects = simple_pdf(LINE)
    objects[3] = pdf_stream(b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % LINE.encode(), length=length)
    return pdf_bytes(objects)


def _startxref_past_eof() -> bytes:
    data = _pdf()
    head, tail = data.rsplit(b"startxref\n", 1)
    return head + b"startxref\n999999999\n%%EOF\n"


PDF_CASES = (
    Case("pdf_200mib_sparse", lambda d: write_sparse_pdf(d / "huge.pdf", 200 * MIB), "skipped",
         r"200\.0 MiB, over the 64\.0 MiB limit"),
    Case("pdf_declared_length_1tb", write("length.pdf", lambda: _declared_length(10**12)), "skipped",
         r"corrupt PDF: LimitReachedError: Declared stream length"),
    Case("pdf_xref_bad_offsets", write("xref.pdf", lambda: _pdf(bad_offsets=True)), "ingested", check=text_has(LINE)),
    Case("pdf_no_xref_table", write("noxref.pdf", lambda: _pdf(xref=False)), "ingested", check=text_has(LINE)),
    Case("pdf_startxref_past_eof", write("startxref.pdf", _startxref_past_eof), "ingested", check=text_has(LINE)),
    Case("pdf_encrypted_user_password", write("locked.pdf", lambda: _encrypted("secret")), "skipped",
         r"encrypted PDF \(a password is needed\)"),
    Case("pdf_encrypted_owner_only", write("owner.pdf", lambda: _encrypted("")), "ingested", check=text_has(LINE)),
    Case("pdf_truncated", write("cut.pdf", lambda: _pdf()[:300]), "skipped", r"truncated"),
    Case("pdf_page_count_lie", write("count.pdf", lambda: pdf_bytes(simple_pdf(LINE, count=10**9))), "ingested",
         check=text_has(LINE)),
    Case("pdf_20k_pages", write("pages.pdf", lambda: _many_pages(20_000)), "skipped",
         r"20000 pages, over the 10000 limit"),
    Case("pdf_page_tree_cycle", write("cycle.pdf", _cycle), "skipped", r"corrupt PDF: .*cyclic page"),
    Case("pdf_flate_bomb_1gib", write("bomb.pdf", lambda: _flate_bomb(1024 * MIB)), "skipped",
         r"corrupt PDF: LimitReachedError"),
    Case("pdf_100k_nested_arrays", write("nested.pdf", lambda: pdf_bytes(simple_pdf(contents=b"[" * 100_000))),
         "skipped", r"no extractable text"),
    Case("pdf_not_a_pdf", write("photo.pdf", b"\xff\xd8\xff\xe0" + bytes(4096)), "skipped", r"not a PDF"),
    Case("pdf_empty", write("empty.pdf", b""), "skipped", r"empty file|not a PDF"),
    Case("pdf_image_only", write("blank.pdf", lambda: pdf_bytes(simple_pdf(contents=b"q 1 0 0 1 0 0 cm Q"))),
         "skipped", r"no extractable text"),
    Case("pdf_good_control", write("good.pdf", _pdf), "ingested", check=text_has(LINE)),
)
