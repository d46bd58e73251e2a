"""Which files a run reads, under which manifest key, and which part of the manifest the run may change (its scope).

Keys: a file of the declared corpus is keyed by its path relative to the domain folder
(`data/corpus/statutes_all.jsonl.gz`); a file given on the command line by its absolute path. The scope of a run
is what it was asked to ingest: the whole declared corpus (every relative key, so a file dropped from domain.toml
goes too), or the PATHs given (every absolute key under them). Only manifest entries in scope can be found
"removed". So `dossier ingest --domain legal ~/contracts` and a later plain `dossier ingest --domain legal` never
undo each other.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from domains.config import CorpusSource, DomainConfig
from ingest.report import SkippedItem

_SUFFIXES = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonl.gz": "jsonl", ".ndjson.gz": "jsonl",
    ".csv": "csv", ".csv.gz": "csv",
    ".txt": "txt", ".text": "txt",
    ".md": "md", ".markdown": "md",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SourceFile:
    key: str  # manifest key (see module doc)
    path: Path  # absolute
    spec: CorpusSource  # field mapping for record formats
    format: str  # jsonl | csv | txt | md | html | pdf | docx
    doc_base: str  # the doc id of a plain file, and the prefix of record ids made up from line numbers
    order: int  # position in this run: the first source wins the duplicate check


@dataclass(frozen=True, slots=True)
class Discovery:
    files: tuple[SourceFile, ...]
    roots: tuple[Path, ...]  # the PATHs given; empty for a run over the declared corpus
    skipped: tuple[SkippedItem, ...]  # missing paths, unsupported file types

    def in_scope(self, key: str) -> bool:
        """Whether a manifest key belongs to this run's scope (and so is removed when its file is gone)."""
        path = Path(key)
        if not self.roots:
            return not path.is_absolute()
        return path.is_absolute() and any(path == root or path.is_relative_to(root) for root in self.roots)


def detect_format(path: Path) -> str | None:
    name = path.name.lower()
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    return None


def discover(cfg: DomainConfig, paths: Sequence[Path] = ()) -> Discovery:
    """The declared corpus of `cfg` when `paths` is empty, else exactly `paths` (files or folders, recursively)."""
    root = cfg.root.resolve()
    if paths:
        entries = [(Path(p).expanduser().resolve(), CorpusSource(path=str(p)), None) for p in paths]
    else:
        entries = [(root / spec.path, spec, root) for spec in cfg.corpus]
    files: list[SourceFile] = []
    skipped: list[SkippedItem] = []
    for entry, spec, key_root in entries:
        base = key_root or entry.parent
        for path in _walk(entry, skipped, key_root):
            fmt = spec.format if spec.format != "auto" else detect_format(path)
            key = path.relative_to(key_root).as_posix() if key_root else path.as_posix()
            if fmt is None:
                skipped.append(SkippedItem(key, f"unsupported file type {path.suffix or '(none)'!r}"))
                continue
            doc_base = path.relative_to(base).as_posix()
            files.append(SourceFile(key, path, spec, fmt, doc_base, len(files)))
    roots = tuple(entry for entry, _, _ in entries) if paths else ()
    return Discovery(tuple(_first_per_key(files)), roots, tuple(skipped))


def _walk(entry: Path, skipped: list[SkippedItem], key_root: Path | None) -> Iterator[Path]:
    shown = entry.relative_to(key_root).as_posix() if key_root else entry.as_posix()
    if entry.is_file():
        yield entry
    elif entry.is_dir():
        for path in sorted(entry.rglob("*")):
            hidden = any(part.startswith((".", "~$")) for part in path.relative_to(entry).parts)
            if path.is_file() and not hidden:
                yield path
    else:
        skipped.append(SkippedItem(shown, "no such file or directory"))


def _first_per_key(files: list[SourceFile]) -> Iterator[SourceFile]:
    seen: set[str] = set()
    for file in files:  # a file listed twice (a folder and a file inside it) is read once
        if file.key not in seen:
            seen.add(file.key)
            yield file
