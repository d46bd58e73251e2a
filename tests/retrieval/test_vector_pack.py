"""Vector packs: int8 quantisation, the checks on use (checksum, identity, re-embedded sample), and an index built
from a pack embedding only what the pack does not hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from retrieval_support import HashEmbedder, article_chunk, hash_builder, write_chunk_store

from ingest.store import ChunkStore
from retrieval.document_vectors import DocumentVectors
from retrieval.vector_cache import VectorCache, document_identity, text_key
from retrieval.vector_pack import (
    MANIFEST_FILE,
    PACK_FILE,
    PackError,
    dequantise,
    open_pack,
    quantise,
    verify_sample,
    write_pack,
)


def _unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_int8_with_a_scale_per_dimension_keeps_every_vector_close() -> None:
    vectors = _unit_rows(500, 768)
    codes, scale = quantise(vectors)
    assert codes.dtype == np.int8 and scale.shape == (768,)
    cosines = np.sum(dequantise(codes, scale) * vectors, axis=1)
    assert cosines.min() > 0.999


def _pack(tmp_path: Path, texts: list[str], embedder: HashEmbedder) -> Path:
    keys = [text_key(t) for t in texts]
    return write_pack(tmp_path / "vectors", keys, embedder.embed(texts), identity=document_identity(embedder),
                      embedder=embedder.name)


TEXTS = [f"第{i}条 盗窃公私财物，数额较大的，处三年以下有期徒刑 {i}" for i in range(40)]


def test_a_pack_round_trips_and_answers_for_its_exact_texts(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    directory = _pack(tmp_path, TEXTS, embedder)
    pack = open_pack(directory, document_identity(embedder))
    assert pack is not None and len(pack) == 40
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    assert manifest["quantisation_cosine"]["min"] > 0.99 and manifest["n"] == 40
    rows = [pack.positions()[text_key(t)] for t in TEXTS]
    assert np.sum(pack.vectors_at(rows) * embedder.embed(TEXTS), axis=1).min() > 0.99
    assert verify_sample(pack, rows, TEXTS, embedder) > 0.99


def test_no_pack_is_not_an_error(tmp_path: Path) -> None:
    assert open_pack(tmp_path / "nothing-here", "a" * 64) is None


def test_another_embedders_pack_is_refused(tmp_path: Path) -> None:
    directory = _pack(tmp_path, TEXTS, HashEmbedder())
    with pytest.raises(PackError, match="another embedder"):
        open_pack(directory, document_identity(HashEmbedder(name="another", dim=64)))


def test_one_changed_byte_or_a_truncated_file_fails_the_checksum(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    directory = _pack(tmp_path, TEXTS, embedder)
    data = bytearray((directory / PACK_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (directory / PACK_FILE).write_bytes(bytes(data))
    with pytest.raises(PackError, match="checksum mismatch"):
        open_pack(directory, document_identity(embedder))
    (directory / PACK_FILE).write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(PackError, match="checksum mismatch"):
        open_pack(directory, document_identity(embedder))


def test_vectors_that_disagree_with_the_embedder_are_caught_by_the_sample(tmp_path: Path) -> None:
    """A pack whose checksum was re-signed after its vectors were changed: the re-embedded sample catches it."""
    embedder = HashEmbedder()
    keys = [text_key(t) for t in TEXTS]
    wrong = _unit_rows(len(TEXTS), embedder.dim, seed=7)
    directory = write_pack(tmp_path / "vectors", keys, wrong, identity=document_identity(embedder),
                           embedder=embedder.name)
    pack = open_pack(directory, document_identity(embedder))
    rows = [pack.positions()[k] for k in keys]
    with pytest.raises(PackError, match="disagree"):
        verify_sample(pack, rows, TEXTS, embedder)


def test_a_build_from_a_pack_embeds_only_the_sample_and_what_the_pack_lacks(tmp_path: Path,
                                                                           articles: list[dict]) -> None:
    chunks = [article_chunk(r) for r in articles]
    packer = HashEmbedder()
    directory = _pack(tmp_path / "shipped", [c.text for c in chunks], packer)

    own = dict(articles[0], doc_id="my-own-note", text="我自己的文件：租房押金条款的备忘录。")
    store_path = write_chunk_store(tmp_path / "ingest" / "chunks.sqlite", [*chunks, article_chunk(own)])
    embedder = HashEmbedder()
    builder = hash_builder(tmp_path / "index", embedder, pack_dir=directory)
    with ChunkStore(store_path) as source:
        change = builder.build(source)
    assert change.stats["from_pack"] == len({c.text for c in chunks})
    assert change.stats["embedded"] == 1  # the user's own document
    assert sum(embedder.calls) == 8 + 1  # the verification sample, then the one miss


def test_a_tampered_pack_is_refused_with_the_reason_and_everything_is_embedded(tmp_path: Path,
                                                                              articles: list[dict]) -> None:
    chunks = [article_chunk(r) for r in articles]
    directory = _pack(tmp_path / "shipped", [c.text for c in chunks], HashEmbedder())
    (directory / PACK_FILE).write_bytes((directory / PACK_FILE).read_bytes()[:-100])
    embedder = HashEmbedder()
    cache = VectorCache.for_identity(tmp_path / "vectors", document_identity(embedder), embedder.dim)
    vectors = DocumentVectors(embedder, cache, pack_dir=directory)
    out = vectors.vectors_for([c.text for c in chunks])
    assert "checksum mismatch" in vectors.stats["pack_refused"]
    assert vectors.stats["from_pack"] == 0 and vectors.stats["embedded"] == len({c.text for c in chunks})
    np.testing.assert_allclose(out, embedder.embed([c.text for c in chunks]), atol=1e-6)


class LazyEmbedder(HashEmbedder):
    """A second runtime of the same function that records when it is loaded."""

    def __init__(self) -> None:
        super().__init__()
        self.backend, self.loaded = "openvino-int8", False

    def load(self) -> LazyEmbedder:
        self.loaded = True
        return self


def test_misses_go_to_the_document_embedder_which_loads_only_when_there_are_misses(tmp_path: Path,
                                                                                  articles: list[dict]) -> None:
    chunks = [article_chunk(r) for r in articles]
    directory = _pack(tmp_path / "shipped", [c.text for c in chunks], HashEmbedder())
    embedder, documents = HashEmbedder(), LazyEmbedder()
    cache = VectorCache.for_identity(tmp_path / "vectors", document_identity(embedder), embedder.dim)

    covered = DocumentVectors(embedder, cache, pack_dir=directory, document_embedder=documents)
    covered.vectors_for([c.text for c in chunks])
    assert not documents.loaded and covered.stats["embedded"] == 0
    assert sum(embedder.calls) == 8  # the pack's sample is checked by the query embedder, already loaded

    own = "我自己的文件：租房押金条款的备忘录。"
    with_own = DocumentVectors(embedder, cache, pack_dir=directory, document_embedder=documents)
    out = with_own.vectors_for([c.text for c in chunks] + [own])
    assert documents.loaded and documents.calls == [1]
    assert with_own.stats["embedded_by"] == "hash-bigrams (openvino-int8)"
    np.testing.assert_allclose(out[-1], embedder.embed([own])[0], atol=1e-6)
