"""Word (.docx) via python-docx: paragraphs, then table rows (cells joined by ' | '), in body order."""

from __future__ import annotations

import logging
import zipfile

from core.errors import IngestError
from ingest.loaders.base import LoadResult, single
from ingest.sources import SourceFile

log = logging.getLogger(__name__)


def load_docx(file: SourceFile) -> LoadResult:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(str(file.path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as err:
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
