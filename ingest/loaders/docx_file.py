"""Word (.docx) via python-docx: paragraphs, then table rows (cells joined by ' | '), in body order.

A .docx is a zip that python-docx reads whole, so the zip is looked at first (`IngestLimits`): its size on disk,
its member count, the inflated size its directory declares (Python's zipfile never inflates a member past that, so
a lying header cannot get round it: the read fails instead) and the tags of its XML parts (counted while
inflating them piecewise). A zip bomb is refused before python-docx sees it."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from core.errors import IngestError
from ingest.limits import IngestLimits, size_text
from ingest.loaders.base import LoadResult, check_size, single
from ingest.sources import SourceFile

log = logging.getLogger(__name__)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an encrypted .docx, or a legacy .doc, is an OLE compound file
_PIECE = 1 << 20


def load_docx(file: SourceFile, limits: IngestLimits) -> LoadResult:
    import docx
    from docx.table import Table

    _check_package(file.path, limits)
    try:
        document = docx.Document(str(file.path))
    except Exception as err:  # python-docx, zipfile and lxml raise many types on broken files: all mean "corrupt"
        log.debug("python-docx failed on %s", file.path, exc_info=True)
        raise IngestError(f"corrupt or not a .docx file: {type(err).__name__}: {err}") from err
    lines = []
    for block in document.iter_inner_content():  # paragraphs and tables, in body order
        if isinstance(block, Table):
            lines += [" | ".join(cell.text.strip() for cell in row.cells) for row in block.rows]
        else:
            lines.append(block.text)
    title = document.core_properties.title or ""
    return single(file, "\n".join(lines), title)


def _check_package(path: Path, limits: IngestLimits) -> None:
    check_size(path, limits)
    try:
        with path.open("rb") as fh:
            if fh.read(len(_OLE_MAGIC)) == _OLE_MAGIC:
                raise IngestError("an OLE file, not a .docx: an encrypted document (remove its password) or a legacy "
                                  ".doc (save it as .docx)")
        with zipfile.ZipFile(path) as package:
            members = package.infolist()
            if len(members) > limits.max_zip_members:
                raise IngestError(f"a zip of {len(members)} members, over the {limits.max_zip_members} limit "
                                  "(IngestLimits.max_zip_members)")
            inflated = sum(m.file_size for m in members)
            if inflated > limits.max_inflated_bytes:
                raise IngestError(f"inflates to {size_text(inflated)}, over the {size_text(limits.max_inflated_bytes)}"
                                  " limit (IngestLimits.max_inflated_bytes): a zip bomb?")
            _check_tags(package, [m for m in members if m.filename.endswith((".xml", ".rels"))], limits)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:  # NotImplementedError: a codec
        raise IngestError(f"corrupt or not a .docx file: {type(err).__name__}: {err}") from err


def _check_tags(package: zipfile.ZipFile, parts: list[zipfile.ZipInfo], limits: IngestLimits) -> None:
    tags = 0
    for part in parts:
        with package.open(part) as fh:
            while piece := fh.read(_PIECE):
                tags += piece.count(b"<")
                if tags > limits.max_xml_tags:
                    raise IngestError(f"more tags in its XML than the {limits.max_xml_tags} limit "
                                      "(IngestLimits.max_xml_tags)")
