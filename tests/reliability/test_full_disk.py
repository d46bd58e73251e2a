"""A full disk during an index build fails cleanly: an error that names the disk, the previous version still current
and intact, no partial version left behind, and the next build (with space again) resumes from the vectors the
failed one had committed.

Two ways to fill the disk: a real 8 MiB tmpfs mounted for the test (needs root, as in the CI container; skipped
where `mount` is refused), and OSError(ENOSPC) injected at each write step, which runs everywhere.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from crash_kit import assert_index_intact, builder, cached_vectors, domain, hash_embedder, write_corpus

from core.errors import IndexError_
from ingest.pipeline import STORE_FILE, run_ingest
from ingest.store import ChunkStore
from retrieval.index_build import IndexChange
from retrieval.store import IndexStore

TMPFS_BYTES = 8 * 1024 * 1024  # one version of the test corpus takes ~1.7 MB


@pytest.fixture
def chunk_store(tmp_path: Path) -> Path:
    write_corpus(tmp_path / "domain", "a")
    run_ingest(domain(tmp_path / "domain"), workspace=tmp_path / "ws", progress=False)
    return tmp_path / "ws" / STORE_FILE


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(disk)],
                                 capture_output=True, text=True)
        refused = mounted.stderr.strip() if mounted.returncode else ""
    except FileNotFoundError:
        refused = "no mount command"
    if refused:
        pytest.skip(f"cannot mount a tmpfs here ({refused}); the injected ENOSPC test still runs")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)  # lazy: never leave it mounted


def _fill(disk: Path, leave: int) -> None:
    """Take all the space of `disk` but `leave` bytes."""
    filler = disk / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(bytes(1 << 16))
                fh.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - leave))


def _build(index_root: Path, vectors: Path, identity: str, chunk_store: Path) -> IndexChange:
    b = builder(index_root, vectors, hash_embedder(identity))
    try:
        with ChunkStore(chunk_store) as source:
            return b.build(source)
    finally:
        b.vectors.cache.close()  # the tmpfs must be unmountable


def _assert_failed_cleanly(err: IndexError_, named: Path, index_root: Path) -> None:
    message = str(err)
    assert "disk is full" in message and str(named) in message and "v0001" in message, message
    store = IndexStore(index_root)
    assert store.current() == "v0001" and store.versions() == ["v0001"]
    assert not [p for p in index_root.iterdir() if p.name.startswith(".tmp")]  # no partial version left
    assert_index_intact(index_root)


@pytest.mark.parametrize(("leave", "says"), [(300_000, "v0002 was not written"), (220_000, "vectors embedded so far")],
                         ids=["full_at_the_version_write", "full_at_the_vector_cache"])
def test_a_full_tmpfs_fails_the_build_cleanly_and_the_next_build_resumes(
    small_disk: Path, chunk_store: Path, leave: int, says: str
) -> None:
    index_root, vectors = small_disk / "index", small_disk / "vectors"
    _build(index_root, vectors, "first", chunk_store)
    builder(index_root, vectors, hash_embedder("second")).vectors.cache.close()  # its (empty) cache file exists
    _fill(small_disk, leave)
    with pytest.raises(IndexError_) as failed:
        _build(index_root, vectors, "second", chunk_store)
    _assert_failed_cleanly(failed.value, small_disk, index_root)
    assert says in str(failed.value)
    kept = cached_vectors(vectors, "second")
    (small_disk / "filler").unlink()
    change = _build(index_root, vectors, "second", chunk_store)
    assert change.version_dir.name == "v0002" and change.stats["from_cache"] == kept  # resumed from what was kept
    assert_index_intact(index_root)


STEPS = {  # where a write can meet a full disk, and what raises there
    "faiss": ("retrieval.faiss_index.FaissIndex.save", RuntimeError("write error in dense.faiss: 0 != 8 (No space "
                                                                     "left on device)")),
    "docstore": ("retrieval.docstore.SqliteDocstore.write", OSError(errno.ENOSPC, "No space left on device")),
    "bm25": ("retrieval.bm25.Bm25Retriever.save", OSError(errno.EDQUOT, "Disk quota exceeded")),
    "fsync": ("retrieval.store._fsync_tree", OSError(errno.ENOSPC, "No space left on device")),
    "current": ("retrieval.store.IndexStore._point_current_at", OSError(errno.ENOSPC, "No space left on device")),
}


@pytest.mark.parametrize("step", STEPS)
def test_enospc_at_any_write_step_fails_cleanly(tmp_path: Path, chunk_store: Path, step: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    index_root = tmp_path / "index"
    _build(index_root, tmp_path / "vectors", "first", chunk_store)
    target, error = STEPS[step]

    def full(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(target, full)
    with pytest.raises(IndexError_) as failed:
        _build(index_root, tmp_path / "vectors", "second", chunk_store)
    _assert_failed_cleanly(failed.value, index_root, index_root)
