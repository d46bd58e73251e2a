"""The on-disk, versioned index store of one domain: `<index_root>/v0001/, v0002/, ...` and a `current` pointer.

Writes are atomic: a version is built in a temp dir beside the versions (same filesystem), every file is
fsynced, the dir is renamed into place, and only then is `current` replaced (write a temp file, fsync,
os.replace). A failed build removes its temp dir and leaves `current` where it was. Pruning is atomic too: an old
version is renamed out of the way before it is deleted, so a kill mid-delete leaves a hidden `.trash-*` dir (removed
by the next write), never half a version under a version name. Loading checks the manifest's sha256 of every file
and that the index was built by the embedder the config asks for. A write that meets a full disk (whichever layer
notices: the OS, SQLite, FAISS) raises `IndexError_` naming the disk; nothing of the new version is left.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from core.errors import IndexError_
from retrieval.manifest import MANIFEST, EmbedderInfo, IndexManifest, checksum_tree, verify_checksums

log = logging.getLogger(__name__)

CURRENT = "current"
_VERSION = re.compile(r"^v(\d{4,})$")
_FULL_ERRNOS = frozenset((errno.ENOSPC, errno.EDQUOT))
_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "database or disk is full")
_NEARLY_FULL_BYTES = 1 << 20  # a write that failed on a disk with less free than this failed for want of space


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*"), reverse=True):
        _fsync_path(path)
    _fsync_path(directory)


class IndexStore:
    """Versions of one domain's index under `root`."""

    def __init__(self, root: Path, keep: int = 3) -> None:
        self.root = root
        self.keep = keep  # versions kept after a successful write (the current one always is)

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        names = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION.match(p.name)]
        return sorted(names, key=lambda n: int(n[1:]))

    def current(self) -> str | None:
        pointer = self.root / CURRENT
        if not pointer.is_file():
            return None
        name = pointer.read_text(encoding="utf-8").strip()
        return name if (self.root / name).is_dir() else None

    def current_dir(self) -> Path | None:
        name = self.current()
        return None if name is None else self.root / name

    def write(self, fill: Callable[[Path], IndexManifest]) -> Path:
        """Build a new version: `fill(tmp_dir)` writes the files and returns the manifest (files / version are set
        here). Returns the new version's directory, which `current` now points at."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            for stale in [*self.root.glob(".tmp-*"), *self.root.glob(".trash-*")]:  # left by a killed build:
                shutil.rmtree(stale, ignore_errors=True)  # under the lock nobody owns them
            version = self._next_version()
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=self.root))
            final = self.root / version
            try:
                manifest = fill(tmp)
                manifest = replace(manifest, version=version, files=checksum_tree(tmp),
                                   created=datetime.now(UTC).isoformat(timespec="seconds"))
                (tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
                _fsync_tree(tmp)
                os.rename(tmp, final)
                _fsync_path(self.root)
                self._point_current_at(version)
            except BaseException as err:
                shutil.rmtree(tmp, ignore_errors=True)
                if self.current() != version:  # renamed but never current: nobody reads it, so it goes too
                    shutil.rmtree(final, ignore_errors=True)
                if is_disk_full(err, self.root):
                    raise disk_full_error(self.root, f"index version {version} was not written and "
                                                     f"{self.current() or 'no version'} is still current") from err
                raise
            self._prune()
        log.info("index version %s written to %s (%d chunks)", version, final, manifest.n_chunks)
        return final

    def open(self, expected: EmbedderInfo | None = None, version: str | None = None) -> tuple[Path, IndexManifest]:
        """The verified directory and manifest of `version` (default: current)."""
        name = version or self.current()
        if name is None:
            raise IndexError_(f"no index under {self.root}; build it with `dossier index build --domain <domain>`")
        return open_version_dir(self.root / name, expected)

    def _next_version(self) -> str:
        existing = [int(v[1:]) for v in self.versions()]
        return f"v{(max(existing) + 1 if existing else 1):04d}"

    def _point_current_at(self, version: str) -> None:
        tmp = self.root / f".{CURRENT}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(version + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / CURRENT)
        _fsync_path(self.root)

    def _prune(self) -> None:
        """Keep the current version and the newest `keep - 1` others (keep <= 0: keep everything)."""
        if self.keep <= 0:
            return
        current = self.current()
        others = [v for v in self.versions() if v != current]
        for name in others[: max(0, len(others) - (self.keep - 1))]:
            trash = Path(tempfile.mkdtemp(prefix=f".trash-{name}-", dir=self.root))
            os.rename(self.root / name, trash / name)  # atomic: the name now means a whole version or nothing
            shutil.rmtree(trash, ignore_errors=True)
            log.info("pruned old index version %s", name)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.root / ".lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def is_disk_full(err: BaseException, path: Path) -> bool:
    """Whether `err`, raised while writing under `path`, means the disk is full: its errno (ENOSPC, EDQUOT), its
    text (FAISS wraps the OS error in a RuntimeError, SQLite says "database or disk is full"), or, for an I/O
    error that says neither (SQLite in WAL mode reports "disk I/O error"), a disk left with almost no space."""
    if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
        return True
    if not isinstance(err, OSError | RuntimeError | sqlite3.Error):
        return False
    if any(text in str(err) for text in _FULL_TEXTS):
        return True
    try:
        return shutil.disk_usage(_mount_point(path)).free < _NEARLY_FULL_BYTES
    except OSError:
        return False


def disk_full_error(path: Path, consequence: str) -> IndexError_:
    mount = _mount_point(path)
    free = shutil.disk_usage(mount).free
    return IndexError_(f"the disk is full: {mount} (holding {path}) has {free // 1024} KiB free; {consequence}. "
                       "Free space there, or set DOSSIER_HOME to a larger disk, and build again")


def _mount_point(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not os.path.ismount(path) and path.parent != path:
        path = path.parent
    return path


def open_version_dir(directory: Path, expected: EmbedderInfo | None = None) -> tuple[Path, IndexManifest]:
    """Read and verify one version directory (checksums, then the embedder)."""
    if not directory.is_dir():
        raise IndexError_(f"index version {directory} does not exist")
    manifest = IndexManifest.read(directory)
    verify_checksums(directory, manifest)
    if expected is not None:
        check_embedder(directory, manifest.embedder, expected)
    return directory, manifest


def check_embedder(directory: Path, built: EmbedderInfo, expected: EmbedderInfo) -> None:
    """Refuse an index built by another model or dimension; precision / backend differences only warn. A query
    adapter of the model that built the index is the same model for documents (models.registry.query_adapter_base)."""
    from models.registry import query_adapter_base

    same_documents = built.name == expected.name or query_adapter_base(expected.name) == built.name
    if not same_documents or (expected.dim and built.dim != expected.dim):
        raise IndexError_(
            f"index {directory} was built with embedder {built.name!r} (dim {built.dim}) but the config asks for "
            f"{expected.name!r} (dim {expected.dim or 'model default'}); rebuild it with "
            "`dossier index build --domain <domain> --rebuild`"
        )
    if (built.precision, built.backend) != (expected.precision, expected.backend):
        log.warning("index %s was embedded with %s/%s, queries use %s/%s (same model: vectors stay comparable)",
                    directory, built.backend, built.precision, expected.backend, expected.precision)
