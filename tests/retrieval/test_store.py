"""The index store: atomic versions, checksums, embedder checks, incremental updates."""

from __future__ import annotations

from pathlib import Path

import pytest
from retrieval_support import HashEmbedder, article_chunk, hash_builder, shared_tokenizer, write_chunk_store

from core.errors import IndexError_
from ingest.store import ChunkStore
from retrieval.faiss_index import FaissIndexSpec
from retrieval.index_build import IndexBuilder
from retrieval.index_files import DOCSTORE_FILE, FAISS_FILE, open_index
from retrieval.manifest import EmbedderInfo
from retrieval.store import IndexStore


def _builder(root: Path, embedder: HashEmbedder | None = None) -> IndexBuilder:
    return hash_builder(root, embedder)


def _build(root: Path, chunk_store_path: Path, embedder: HashEmbedder | None = None) -> Path:
    with ChunkStore(chunk_store_path) as source:
        return _builder(root, embedder).build(source).version_dir


def test_build_writes_a_verified_version(tmp_path: Path, chunk_store_path: Path) -> None:
    version = _build(tmp_path / "index", chunk_store_path)
    store = IndexStore(tmp_path / "index")
    assert store.current() == version.name == "v0001"
    directory, manifest = store.open(EmbedderInfo("hash-bigrams", 64, "fp32", "torch"))
    assert manifest.n_chunks == len(ChunkStore(chunk_store_path))
    assert {FAISS_FILE, DOCSTORE_FILE} <= set(manifest.files) and any(f.startswith("bm25/") for f in manifest.files)


def test_failed_build_leaves_previous_version_and_no_temp_dirs(tmp_path: Path, chunk_store_path: Path) -> None:
    root = tmp_path / "index"
    _build(root, chunk_store_path)

    class Exploding(HashEmbedder):
        def embed(self, texts, role="document"):  # noqa: ANN001, ANN201
            raise RuntimeError("embedding failed half way")

    with pytest.raises(RuntimeError), ChunkStore(chunk_store_path) as source:
        _builder(root, Exploding("exploding")).build(source)  # another identity: nothing is cached for it

    def failing_fill(tmp: Path):  # noqa: ANN202
        (tmp / "partial.bin").write_bytes(b"x" * 100)
        raise OSError("disk full")

    with pytest.raises(OSError):
        IndexStore(root).write(failing_fill)
    assert IndexStore(root).versions() == ["v0001"] and IndexStore(root).current() == "v0001"
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp")]
    IndexStore(root).open()  # still valid


def test_corrupt_file_fails_the_checksum(tmp_path: Path, chunk_store_path: Path) -> None:
    version = _build(tmp_path / "index", chunk_store_path)
    with (version / FAISS_FILE).open("r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(IndexError_, match=r"checksum mismatch for dense\.faiss.*rebuild"):
        IndexStore(tmp_path / "index").open()
    (version / DOCSTORE_FILE).unlink()
    with pytest.raises(IndexError_, match="missing"):
        IndexStore(tmp_path / "index").open()


def test_embedder_mismatch_is_refused(tmp_path: Path, chunk_store_path: Path) -> None:
    root = tmp_path / "index"
    _build(root, chunk_store_path)
    with pytest.raises(IndexError_, match="built with embedder 'hash-bigrams'.*'all-minilm-l6-v2'"):
        open_index(root, EmbedderInfo("all-minilm-l6-v2", 384, "fp32", "torch"), shared_tokenizer(), FaissIndexSpec())
    with pytest.raises(IndexError_, match="dim 64"):
        IndexStore(root).open(EmbedderInfo("hash-bigrams", 128, "fp32", "torch"))


def test_incremental_update_touches_only_changed_chunks(tmp_path: Path, chunk_store_path: Path,
                                                        articles: list[dict]) -> None:
    root = tmp_path / "index"
    embedder = HashEmbedder()
    _build(root, chunk_store_path, embedder)
    n = len(articles)
    chunks = [article_chunk(r) for r in articles[1:]]  # article 1 deleted
    chunks[0] = article_chunk(articles[1], articles[1]["text"] + "（修订）")  # article 2 changed
    extra = dict(articles[0], doc_id="new-doc")
    write_chunk_store(chunk_store_path, [*chunks, article_chunk(extra)])  # one added

    embedder.calls.clear()
    with ChunkStore(chunk_store_path) as source:
        change = _builder(root, embedder).update(source)
    assert change.added == ("new-doc#0",) and change.changed == (f"{articles[1]['doc_id']}#0",)
    assert change.removed == (f"{articles[0]['doc_id']}#0",) and not change.full_build
    assert sum(embedder.calls) == 1  # the changed text only: the added chunk repeats a text the cache holds
    assert IndexStore(root).current() == "v0002"

    index = open_index(root, None, shared_tokenizer(), FaissIndexSpec())
    assert len(index.dense) == len(index.docstore) == n
    assert index.docstore.chunk_by_id(f"{articles[0]['doc_id']}#0") is None
    assert index.docstore.chunk_by_id(f"{articles[1]['doc_id']}#0").text.endswith("（修订）")
    assert index.manifest.parent == "v0001"

    with ChunkStore(chunk_store_path) as source:
        again = _builder(root, embedder).update(source)
    assert again.touched == 0 and IndexStore(root).current() == "v0002"  # nothing changed: no new version


def test_killed_build_resumes_from_the_vector_cache(tmp_path: Path, chunk_store_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("retrieval.document_vectors.EMBED_SLICE", 40)
    root = tmp_path / "index"

    class DiesAfterTwoSlices(HashEmbedder):
        def embed(self, texts, role="document"):  # noqa: ANN001, ANN201
            if len(self.calls) == 2:
                raise KeyboardInterrupt  # the user stops a long build
            return super().embed(texts, role)

    with pytest.raises(KeyboardInterrupt), ChunkStore(chunk_store_path) as source:
        _builder(root, DiesAfterTwoSlices()).build(source)
    assert IndexStore(root).current() is None
    embedder = HashEmbedder()
    with ChunkStore(chunk_store_path) as source:
        change = _builder(root, embedder).build(source)
        total = len(source)
    assert sum(embedder.calls) == total - 80  # two slices of 40 were kept
    assert change.stats["from_cache"] == 80
    index = open_index(root, None, shared_tokenizer(), FaissIndexSpec())
    fresh = HashEmbedder().embed([c.text for c in ChunkStore(chunk_store_path).chunks()])
    scores, _ = index.dense.search(fresh, 1)
    assert scores[:, 0].min() > 0.999  # resumed vectors are the right ones


def test_old_versions_are_pruned(tmp_path: Path) -> None:
    from retrieval.manifest import IndexManifest

    store = IndexStore(tmp_path / "index", keep=2)

    def fill(tmp: Path) -> IndexManifest:
        (tmp / "data.bin").write_bytes(b"x")
        return IndexManifest("legal", "", "", EmbedderInfo("e", 4, "fp32", "torch"), "flat", 1)

    for _ in range(3):
        store.write(fill)
    assert store.versions() == ["v0002", "v0003"] and store.current() == "v0003"


def test_a_query_adapter_of_the_building_model_may_search_its_index(tmp_path: Path) -> None:
    """Documents embed identically through a query adapter (training/retriever/query_adapter.py): a base-model
    index serves it; any other model, or another dimension, is still refused."""
    from retrieval.store import check_embedder

    base = EmbedderInfo("embeddinggemma-300m", 768, "bf16", "torch")
    check_embedder(tmp_path, base, EmbedderInfo("embeddinggemma-300m-legal-qa", 768, "bf16", "torch"))
    with pytest.raises(IndexError_, match="rebuild"):
        check_embedder(tmp_path, base, EmbedderInfo("all-minilm-l6-v2", 768, "bf16", "torch"))
    with pytest.raises(IndexError_, match="rebuild"):
        check_embedder(tmp_path, base, EmbedderInfo("embeddinggemma-300m-legal-qa", 256, "bf16", "torch"))
    with pytest.raises(IndexError_, match="rebuild"):  # the adapter's base is not the model that built this index
        check_embedder(tmp_path, EmbedderInfo("all-minilm-l6-v2", 768, "fp32", "torch"),
                       EmbedderInfo("embeddinggemma-300m-legal-qa", 768, "bf16", "torch"))
