"""kill -9 at seeded random points, ten times during ingest and ten times during an index build: after every kill
the chunk store is intact and holds exactly the last committed run, the current index version loads and passes its
checksums, no half-written version is current, and the next run resumes (a build embeds only what the killed one
had not committed to the vector cache) and ends with the right content.

The work runs in `crash_worker.py`, a real subprocess (real SQLite, FAISS, fsync, rename), slowed a few ms per step
so that kills land inside the run; the test kills it after a step drawn at random (and a random delay), by pid.
"""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path

import numpy as np
import pytest
from crash_kit import (
    assert_index_intact,
    builder,
    cached_vectors,
    check_store,
    domain,
    hash_embedder,
    retrieval_support,
    store_digest,
    write_corpus,
)
from crash_run import Kill, kill_after, run_worker
from crash_worker import EMBED_SLICE

from ingest.pipeline import STORE_FILE, run_ingest
from ingest.store import ChunkStore
from retrieval.faiss_index import FaissIndexSpec
from retrieval.index_files import open_index
from retrieval.store import IndexStore

log = logging.getLogger(__name__)
SEED = 16
KILLS = 10
BUILD_STEPS_AFTER_EMBED = ("write", "filled", "flip", "flipped")


@pytest.fixture(autouse=True)
def _slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("retrieval.document_vectors.EMBED_SLICE", EMBED_SLICE)  # the worker's slice, here too


def _reference(root: Path, states: str) -> tuple[str, int]:
    """The store digest after clean runs through `states` in order, and the last run's step count."""
    for state in states:
        write_corpus(root / "domain", state)
        report = run_ingest(domain(root / "domain"), workspace=root / "ws", progress=False)
    return store_digest(root / "ws" / STORE_FILE), report.files_ingested + report.documents_added + 1


def test_kill_9_during_ingest_ten_times_leaves_the_last_committed_store(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    digest_a, _ = _reference(tmp_path / "ref", "a")
    digest_b, steps_b = _reference(tmp_path / "ref", "b")  # steps of the run a -> b
    again, steps_a = _reference(tmp_path / "ref", "a")  # and of b -> a
    assert again == digest_a  # the store holds a state, not a history
    root, workspace, index_root = tmp_path / "domain", tmp_path / "ws", tmp_path / "index"
    write_corpus(root, "a")
    run_ingest(domain(root), workspace=workspace, progress=False)
    index_builder = builder(index_root, tmp_path / "vectors", hash_embedder("ingest-kills"))
    with ChunkStore(workspace / STORE_FILE) as source:
        index_builder.build(source)
    kills: list[Kill] = []
    for i in range(KILLS):
        target, before = ("b", digest_a) if i % 2 == 0 else ("a", digest_b)
        write_corpus(root, target)
        steps = steps_b if target == "b" else steps_a
        kill = kill_after(["ingest", str(root), str(workspace)], rng.randint(1, steps), rng.uniform(0, 0.02))
        kills.append(kill)
        check_store(workspace / STORE_FILE)
        after = digest_b if target == "b" else digest_a
        found = store_digest(workspace / STORE_FILE)
        assert found in (before, after), f"kill {i} after {kill.last}: the store holds half a run"
        log.info("ingest kill %d after %s (step %d): %s", i, kill.last, len(kill.steps),
                 "committed" if found == after else "rolled back")
        assert_index_intact(index_root)  # ingest never touches the index; the version built before still loads
        run_ingest(domain(root), workspace=workspace, progress=False)  # the next run finishes the change
        assert store_digest(workspace / STORE_FILE) == after, f"kill {i}: the next run did not finish the change"
        with ChunkStore(workspace / STORE_FILE) as source:
            index_builder.update(source)
        assert_index_intact(index_root)
    landed = {k.last for k in kills}
    assert {"load", "add"} <= landed, f"the kills landed only after {landed}"  # both before and inside the write


def _build_args(tmp_path: Path, identity: str) -> list[str]:
    store = tmp_path / "ws" / STORE_FILE
    return ["build", str(store), str(tmp_path / "index"), str(tmp_path / "vectors"), identity]


def test_kill_9_during_an_index_build_ten_times_keeps_the_previous_version_and_resumes(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    write_corpus(tmp_path / "domain", "a")
    run_ingest(domain(tmp_path / "domain"), workspace=tmp_path / "ws", progress=False)
    with ChunkStore(tmp_path / "ws" / STORE_FILE) as source:
        chunks = list(source.chunks())
        builder(tmp_path / "index", tmp_path / "vectors", hash_embedder("first")).build(source)
    total = len({c.text for c in chunks})
    slices = math.ceil(total / EMBED_SLICE)
    resumed: list[tuple[Kill, int]] = []
    for i in range(KILLS):
        identity = f"kill-{i}"  # a cache of its own: the killed build starts with no vectors
        if i < 7:  # anywhere in the build
            kill = kill_after(_build_args(tmp_path, identity), rng.randint(1, slices + 4), rng.uniform(0, 0.03))
        else:  # inside the atomic write of the version: between "write" and the end
            kill = kill_after(_build_args(tmp_path, identity), slices + 1, rng.uniform(0, 0.3))
        assert_index_intact(tmp_path / "index")
        cached = cached_vectors(tmp_path / "vectors", identity)
        embedder = hash_embedder(identity)
        with ChunkStore(tmp_path / "ws" / STORE_FILE) as source:
            change = builder(tmp_path / "index", tmp_path / "vectors", embedder).build(source)
        assert change.stats["from_cache"] == cached and change.stats["embedded"] == total - cached
        assert sum(embedder.calls) == total - cached  # nothing the killed build committed is embedded again
        _assert_resumed_content(tmp_path, change.version_dir, chunks)
        resumed.append((kill, cached))
    log.info("build kills (last step, vectors kept of %d): %s", total, [(k.last, c) for k, c in resumed])
    mid_embedding = [k for k, cached in resumed if 0 < cached < total]
    in_write = [k for k, _ in resumed if k.last in BUILD_STEPS_AFTER_EMBED[:-1]]
    assert len(mid_embedding) >= 4 and in_write, [(k.last, c) for k, c in resumed]


def _assert_resumed_content(tmp_path: Path, version_dir: Path, chunks: list) -> None:
    assert IndexStore(tmp_path / "index").current() == version_dir.name
    index = open_index(tmp_path / "index", None, retrieval_support().shared_tokenizer(), FaissIndexSpec())
    try:
        assert len(index.dense) == len(index.docstore) == len(chunks)
        assert all(index.docstore.chunk_by_id(c.chunk_id) is not None for c in chunks[:: max(1, len(chunks) // 50)])
        fresh = retrieval_support().HashEmbedder().embed([c.text for c in chunks])
        scores, _ = index.dense.search(fresh, 1)
        assert float(np.min(scores[:, 0])) > 0.999  # every chunk finds its own vector: the resumed ones are right
    finally:
        index.close()


def test_the_worker_runs_to_its_end_when_nobody_kills_it(tmp_path: Path) -> None:
    write_corpus(tmp_path / "domain", "a")
    steps = run_worker(["ingest", str(tmp_path / "domain"), str(tmp_path / "ws")])
    assert steps[0] == "ready" and steps[-1] == "done" and "manifest" in steps
    check_store(tmp_path / "ws" / STORE_FILE)


def test_a_kill_while_an_old_version_is_pruned_leaves_no_half_version(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the kills above: pruning deleted an old version in place, so a kill mid-delete left `v0001` with
    files missing (and `dossier index status` failing on it). Now it is renamed out of the way first."""
    write_corpus(tmp_path / "domain", "a")
    run_ingest(domain(tmp_path / "domain"), workspace=tmp_path / "ws", progress=False)
    with ChunkStore(tmp_path / "ws" / STORE_FILE) as source:
        builder(tmp_path / "index", tmp_path / "vectors", hash_embedder("x"), keep=1).build(source)

        def killed_mid_delete(path: Path, ignore_errors: bool = False) -> None:
            next(p for p in sorted(Path(path).rglob("*")) if p.is_file()).unlink()
            raise SystemExit("killed while deleting")  # what a SIGKILL at this point leaves, without the kill

        monkeypatch.setattr("retrieval.store.shutil.rmtree", killed_mid_delete)
        with pytest.raises(SystemExit):
            builder(tmp_path / "index", tmp_path / "vectors", hash_embedder("x"), keep=1).build(source)
    monkeypatch.undo()
    assert IndexStore(tmp_path / "index").current() == "v0002"
    assert_index_intact(tmp_path / "index")  # every vNNNN left is whole
