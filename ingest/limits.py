"""How much of one input file ingest is willing to read: every size, count and depth cap of the loaders, in one place.

A hostile or broken file (a zip bomb inside a .docx, a gzip that inflates to gigabytes, a 100 MB JSONL line, an
HTML page of a million tags, a PDF that declares a billion pages) must cost a bounded amount of time and memory and
end as a skipped input with a reason, never as a crashed or hung run. The defaults sit well above any legitimate
document we have seen (the whole shipped statute corpus is 18 MB of JSONL; a 500-page contract is ~5 MB of DOCX
XML) and keep one ingest process under ~1.5 GB. Pass other values to `run_ingest(..., limits=IngestLimits(...))`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class IngestLimits:
    # A file that is read whole (PDF, DOCX, HTML, text, CSV) larger than this on disk, or once gunzipped, is refused
    # unread: parsers hold several copies of it (bytes, str, tree), so this bounds their memory.
    max_file_bytes: int = 64 * MIB
    # The parts of a DOCX (a zip) inflated, by the sizes its directory declares; Python's zipfile never inflates a
    # member past its declared size, so a lying header cannot get round it.
    max_inflated_bytes: int = 256 * MIB
    # A JSONL file is streamed line by line, but the run keeps every parsed document until it commits, so its
    # inflated size and its record count (lines, blank ones too, for JSONL) bound the run's memory and time.
    max_stream_bytes: int = 512 * MIB
    max_records: int = 200_000
    # One JSONL line (a record); a longer one is skipped without being held in memory.
    max_record_bytes: int = 8 * MIB
    # Inflated / compressed bytes of a streamed gzip, checked once 8 MiB are out: text compresses 3-10:1 (the
    # shipped statutes 6:1), a bomb 1000:1; stopping early spares the time of reading a bomb up to the limit.
    max_inflate_ratio: int = 100
    # '<' in an HTML page: BeautifulSoup keeps ~1 KB per tag (200k tags ~ 210 MB). In the XML parts of a DOCX, which
    # lxml keeps in C at a tenth of that (a 500-page contract has ~300k).
    max_markup_tags: int = 200_000
    max_xml_tags: int = 2_000_000
    max_zip_members: int = 10_000
    max_pdf_pages: int = 10_000

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 1:
                raise ValueError(f"IngestLimits.{f.name} must be >= 1, got {getattr(self, f.name)}")

    def key(self) -> str:
        """Names these limits in the store: a file skipped under other limits is read again."""
        return ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


def size_text(n: int) -> str:
    """A byte count as people read it in a reason: '200.0 MiB', '812 bytes'."""
    return f"{n / MIB:.1f} MiB" if n >= MIB else f"{n} bytes"
