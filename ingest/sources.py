"""Which files a run reads, under which manifest key, and which part of the manifest the run may change (its scope).

Keys: a file of the declared corpus is keyed by its path relative to the domain folder
(`data/corpus/statutes_all.jsonl.gz`); a file given on the command line by its absolute path. The scope of a run
is what it was asked to ingest: the whole declared corpus (every relative key, so a file dropped from domain.toml
goes too), or the PATHs given (every absolute key under them). Only manifest entries in scope can be found
"removed". So `dossier ingest --domain legal ~/contracts` and a later plain `dossier ingest --domain legal` never
undo each other.

What is never read, each listed in the report with its reason: a declared corpus path that leaves the domain folder
(a shared domain.toml must not reach `../../etc/passwd` or `/home/you/.ssh`), and in a folder walk symlinks that
loop, dangle or point outside the folder, symlinked folders (not followed), FIFOs, sockets and devices (reading a
FIFO would block forever), and names that are not valid UTF-8 (the store and report.json hold UTF-8 only).
A name sent by a client is checked by `upload_path` below, which the upload route (issue 15) must use.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.errors import IngestError
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


UPLOAD_NAME_BYTES = 255  # the longest file name ext4, APFS and NTFS accept
# Unicode categories never allowed in an uploaded name: controls (NUL, newline), format characters (bidi overrides
# that make "invoice\u202efdp.exe" read as "invoiceexe.pdf", zero-width), surrogates (undecodable bytes), private use,
# unassigned.
_BAD_NAME_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn"))


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


def upload_path(folder: Path, name: str) -> Path:
    """Where a file a client uploaded as `name` is saved: directly inside `folder`. Raises IngestError (the reason
    for a 400) unless `name` is a plain, visible, supported file name: no path (`../../etc/passwd`, `/etc/passwd`,
    `..\\..\\win.ini`), no control or invisible characters, not hidden, at most 255 bytes. Never join a client's
    name onto a path any other way."""
    problem = _name_problem(name)
    target = folder / name
    if problem is None and target.parent != folder:  # belt and braces: the checks above already rule this out
        problem = "not a plain file name"
    if problem is not None:
        raise IngestError(f"upload name {name!r} refused: {problem}")
    return target


def _name_problem(name: str) -> str | None:
    if not name.strip() or name in (".", ".."):
        return "not a file name"
    if "/" in name or "\\" in name:
        return "a path, not a file name (no / or \\ allowed)"
    if any(unicodedata.category(ch) in _BAD_NAME_CATEGORIES for ch in name):
        return "control, invisible or undecodable characters"
    if len(name.encode("utf-8")) > UPLOAD_NAME_BYTES:
        return f"longer than {UPLOAD_NAME_BYTES} bytes"
    if name.startswith((".", "~$")):
        return "a hidden or lock-file name, which ingest never reads"
    if detect_format(Path(name)) is None:
        return f"unsupported file type {Path(name).suffix or '(none)'!r}"
    return None


def discover(cfg: DomainConfig, paths: Sequence[Path] = ()) -> Discovery:
    """The declared corpus of `cfg` when `paths` is empty, else exactly `paths` (files or folders, recursively)."""
    root = cfg.root.resolve()
    skipped: list[SkippedItem] = []
    if paths:
        entries = [(entry, CorpusSource(path=str(p)), None) for p in paths if (entry := _resolved(p, skipped))]
    else:
        entries = [(root / spec.path, spec, root) for spec in cfg.corpus if _inside_domain(spec.path, skipped)]
    files: list[SourceFile] = []
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


def _resolved(path: Path, skipped: list[SkippedItem]) -> Path | None:
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError) as err:  # Python 3.11 raises RuntimeError for a symlink loop
        skipped.append(SkippedItem(_printable(Path(path)), f"symlink loop: {err}"))
        return None


def _inside_domain(path: str, skipped: list[SkippedItem]) -> bool:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or "\\" in path:
        skipped.append(SkippedItem(path, "path escapes the domain folder: a corpus path in domain.toml must be "
                                         "relative to the folder and stay inside it"))
        return False
    return True


def _walk(entry: Path, skipped: list[SkippedItem], key_root: Path | None) -> Iterator[Path]:
    shown = _shown(entry, key_root)
    if (problem := _unreadable_entry(entry)) is not None:
        skipped.append(SkippedItem(shown, problem))
    elif entry.is_file():
        yield entry
    elif not entry.is_dir():
        skipped.append(SkippedItem(shown, "no such file or directory"))
    elif not (yield from _walk_folder(entry, skipped, key_root)):
        skipped.append(SkippedItem(shown, "empty folder: no files to ingest"))


def _walk_folder(folder: Path, skipped: list[SkippedItem], key_root: Path | None) -> Iterator[Path]:
    """The regular files under `folder` (hidden ones left out); returns whether it held any entry at all."""
    inside = folder.resolve()
    found = False
    for path in sorted(folder.rglob("*")):
        found = True
        if any(part.startswith((".", "~$")) for part in path.relative_to(folder).parts) or path.is_dir() and \
                not path.is_symlink():
            continue
        problem = _unreadable_entry(path) or _symlink_problem(path, inside)
        if problem is not None:
            skipped.append(SkippedItem(_shown(path, key_root), problem))
        else:
            yield path
    return found


def _unreadable_entry(path: Path) -> str | None:
    """Why `path` is not read although it exists in some form, or None."""
    try:
        path.as_posix().encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8: rename it"
    if path.is_symlink() and not path.exists():
        return "broken symlink or symlink loop"
    if path.exists() and not path.is_file() and not path.is_dir():
        return "not a regular file (a FIFO, socket or device): not read"
    return None


def _symlink_problem(path: Path, folder: Path) -> str | None:
    if not path.is_symlink():
        return None
    target = path.resolve()
    if target.is_dir():
        return "symlinked folder: not followed (it could loop)"
    if not target.is_relative_to(folder):
        return "symlink points outside the folder being ingested: not followed"
    return None


def _shown(path: Path, key_root: Path | None) -> str:
    return _printable(path.relative_to(key_root) if key_root else path)


def _printable(path: Path) -> str:
    """A path as the report (UTF-8 JSON) can hold it, undecodable bytes of a name shown as escapes."""
    return path.as_posix().encode("utf-8", "backslashreplace").decode("utf-8")


def _first_per_key(files: list[SourceFile]) -> Iterator[SourceFile]:
    seen: set[str] = set()
    for file in files:  # a file listed twice (a folder and a file inside it) is read once
        if file.key not in seen:
            seen.add(file.key)
            yield file
