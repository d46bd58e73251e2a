"""Readers keep answering while another process writes new index versions, flips `current` and prunes old ones.

Two kinds of reader, each a thread searching in a loop (dense, BM25, docstore): one opened the index once and keeps
it, as the server does (its version is pruned under it midway: its files are unlinked, not changed, so it goes on);
one opens whatever `current` names on every round, as a restarted server or `dossier ask` would.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from crash_kit import builder, domain, hash_embedder, retrieval_support, write_corpus
from crash_run import run_worker

from ingest.pipeline import STORE_FILE, run_ingest
from ingest.store import ChunkStore
from retrieval.faiss_index import FaissIndexSpec
from retrieval.index_files import OpenIndex, open_index

BUILDS = 4  # by the writer, with keep=2: the version the held reader opened is pruned after the second
QUERIES = ["盗窃公私财物，数额较大的", "故意杀人的", "危害国家安全罪"]


def _search(index: OpenIndex, query: str) -> None:
    support = retrieval_support()
    _, keys = index.dense.search(support.HashEmbedder().embed([query]), 5)
    dense = index.docstore.chunks(keys[0][keys[0] >= 0].tolist())
    _, positions = index.bm25.search([query], 5)
    sparse = index.docstore.chunks(index.docstore.keys_by_position()[positions[0][positions[0] >= 0]].tolist())
    assert dense and all(c.text for c in [*dense.values(), *sparse.values()])


def test_readers_keep_answering_while_versions_are_written_swapped_and_pruned(tmp_path: Path) -> None:
    write_corpus(tmp_path / "domain", "a")
    run_ingest(domain(tmp_path / "domain"), workspace=tmp_path / "ws", progress=False)
    index_root, tokenizer = tmp_path / "index", retrieval_support().shared_tokenizer()
    with ChunkStore(tmp_path / "ws" / STORE_FILE) as source:
        builder(index_root, tmp_path / "vectors", hash_embedder("v1"), keep=2).build(source)
    held = open_index(index_root, None, tokenizer, FaissIndexSpec())
    stop, errors, answered, seen = threading.Event(), [], Counter(), set()

    def reader(name: str) -> None:
        try:
            while not stop.is_set():
                for query in QUERIES:
                    if name == "held":
                        _search(held, query)
                        answered["held after its version was pruned"] += not held.directory.exists()
                    else:
                        index = open_index(index_root, None, tokenizer, FaissIndexSpec())
                        seen.add(index.manifest.version)
                        try:
                            _search(index, query)
                        finally:
                            index.close()
                    answered[name] += 1
        except Exception as err:  # noqa: BLE001 - any error a reader sees fails the test, with its name
            errors.append(f"{name}: {type(err).__name__}: {err}")

    threads = [threading.Thread(target=reader, args=(name,)) for name in ("held", "following")]
    for thread in threads:
        thread.start()
    try:
        steps = run_worker(["build", str(tmp_path / "ws" / STORE_FILE), str(index_root), str(tmp_path / "vectors"),
                            "writer", str(BUILDS), "2"])
        before_stop = dict(answered)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        held.close()
    assert not errors, errors
    assert steps.count("flipped") == BUILDS
    assert before_stop["held"] > 10 and before_stop["following"] > 10, before_stop
    assert before_stop["held after its version was pruned"] > 0, before_stop  # its files unlinked, not changed
    assert len(seen) >= 3, f"the following reader saw only {seen}"
