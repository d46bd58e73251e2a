"""What the crash tests and their worker share: a corpus in two states, a hash-embedder index builder, and checks
of a chunk store and an index root after a kill.

`retrieval_support` (tests/retrieval) is loaded by its path: that folder is on sys.path only while pytest collects
it, and this kit also runs in the worker subprocess.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import sqlite3
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
ARTICLES = TESTS.parent / "domains" / "legal" / "data" / "corpus" / "criminal_law_articles.jsonl.gz"
PER_FILE = 8  # articles per corpus file: ~63 files, so a kill can land between any two
PROMPTS = {"system": "s", "answer": "{context}{question}", "rewrite": "{history}{question}", "abstain": "n"}
FIELDS = ["law_name", "article_no", "status"]


def retrieval_support() -> ModuleType:
    module = sys.modules.get("retrieval_support")
    if module is None:
        path = TESTS / "retrieval" / "retrieval_support.py"
        spec = importlib.util.spec_from_file_location("retrieval_support", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["retrieval_support"] = module
        spec.loader.exec_module(module)
    return module


def domain(root: Path):  # noqa: ANN201 - a DomainConfig
    from domains.config import domain_from_mapping

    corpus = [{"path": "corpus", "format": "jsonl", "title_fields": ["law_name", "article_no"],
               "metadata_fields": FIELDS}]
    data = {"name": "crash", "display_name": "C", "language": "zh", "corpus": corpus, "prompts": PROMPTS,
            "chunking": {"strategy": "statute"}}
    return domain_from_mapping(data, root=root)


def write_corpus(root: Path, state: str) -> None:
    """State "a": the Criminal Law in files of 8 articles. State "b": 6 of those files changed (an article
    amended), 4 gone, 4 new ones. Files of the other state are removed, so the folder is exactly that state."""
    with gzip.open(ARTICLES, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    files = {f"part{i // PER_FILE:03d}.jsonl": rows[i : i + PER_FILE] for i in range(0, len(rows), PER_FILE)}
    if state == "b":
        names = sorted(files)
        for name in names[:6]:
            files[name] = [{**files[name][0], "text": files[name][0]["text"] + "（修正）"}, *files[name][1:]]
        for name in names[6:10]:
            files[f"new{name}"] = [{**r, "doc_id": f"{r['doc_id']}-b"} for r in files.pop(name)]
    folder = root / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.name not in files:
            old.unlink()
    for name, records in files.items():
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != body:
            (folder / name).write_text(body, encoding="utf-8")


def store_digest(path: Path) -> str:
    """What a chunk store holds (documents, chunks, duplicates, manifest), independent of row order."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        digest = hashlib.sha256()
        for table in ("documents", "chunks", "duplicates", "manifest"):
            for row in sorted(db.execute(f"SELECT * FROM {table}"), key=repr):
                digest.update(repr(row).encode())
        return digest.hexdigest()
    finally:
        db.close()


def check_store(path: Path) -> None:
    """The store opens, SQLite finds it intact, and every chunk is its document's text[start:end]."""
    from ingest.store import ChunkStore

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    with ChunkStore(path) as store:
        documents = {d.doc_id: d for d in store.documents()}
        for chunk in store.chunks():
            assert chunk.text == documents[chunk.doc_id].text[chunk.start : chunk.end], chunk.chunk_id
        assert {d.source for d in documents.values()} <= set(store.manifest())  # manifest and chunks agree


def assert_index_intact(index_root: Path) -> None:
    """The current version is a whole version that passes its checksums and answers; so does every other."""
    from retrieval.faiss_index import FaissIndexSpec
    from retrieval.index_files import open_index
    from retrieval.store import IndexStore, open_version_dir

    store = IndexStore(index_root)
    current = store.current()
    assert current is not None and current in store.versions(), f"current is {current!r}"
    for version in store.versions():
        open_version_dir(index_root / version)  # no half-written version under a version name
    index = open_index(index_root, None, retrieval_support().shared_tokenizer(), FaissIndexSpec())
    try:
        query = retrieval_support().HashEmbedder().embed(["盗窃公私财物，数额较大的"])
        _, keys = index.dense.search(query, 3)
        assert len(index.docstore.chunks(keys[0].tolist())) == 3
    finally:
        index.close()


def builder(index_root: Path, vectors: Path, embedder: Any, keep: int = 3):  # noqa: ANN201 - an IndexBuilder
    from retrieval.faiss_index import FaissIndexSpec
    from retrieval.index_build import IndexBuilder
    from retrieval.store import IndexStore
    from retrieval.vector_cache import VectorCache, document_identity

    cache = VectorCache.for_identity(vectors, document_identity(embedder), embedder.dim)
    return IndexBuilder("crash", IndexStore(index_root, keep=keep), embedder, retrieval_support().shared_tokenizer(),
                        FaissIndexSpec(kind="flat"), vector_cache=cache)


def hash_embedder(identity: str) -> Any:
    """The tests' hash embedder under its own cache identity (one per kill: each build starts with no vectors)."""
    embedder = retrieval_support().HashEmbedder()
    embedder.identity = identity
    return embedder


def cached_vectors(vectors: Path, identity: str) -> int:
    """How many vectors the cache of `identity` holds (what a build under it would not embed again)."""
    from retrieval.vector_cache import VectorCache, document_identity

    embedder = hash_embedder(identity)
    with VectorCache.for_identity(vectors, document_identity(embedder), embedder.dim) as cache:
        return len(cache)
