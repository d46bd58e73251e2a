"""The bundle's embedder keeps the vocabulary its domain uses: on the texts it was trimmed on, the trimmed tokenizer
gives the original tokens (renumbered) and the trimmed graph the original vectors; any other text still tokenises;
a tokenizer or graph the trim cannot renumber is refused with the way out (--embedder-vocab full)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from api_support import needs_minilm

from edge.errors import ExportError
from edge.export.vocab_trim import check_same_tokens, seen_token_ids, trim_vocabulary

LEGAL = ["第二百六十四条 盗窃公私财物，数额较大的，或者多次盗窃、入户盗窃、携带凶器盗窃、扒窃的，"
         "处三年以下有期徒刑、拘役或者管制，并处或者单处罚金。",
         "第二百三十四条 故意伤害他人身体的，处三年以下有期徒刑、拘役或者管制。"]
UNSEEN = ["朋友借钱一直不还，过了几年还能起诉吗？", "How long can I wait before suing? Привет ☃"]


@pytest.fixture(scope="module")
def bpe(tmp_path_factory: pytest.TempPathFactory):
    """The tests' byte-level BPE tokenizer (3,000 tokens, trained on shipped legal text)."""
    from tiny_models import build_tiny_tokenizer

    return build_tiny_tokenizer(tmp_path_factory.mktemp("bpe")).backend_tokenizer


def _trimmed(tokenizer, texts: list[str]):
    from tokenizers import Tokenizer

    vocab = trim_vocabulary(json.loads(tokenizer.to_str()), seen_token_ids(tokenizer, texts))
    return vocab, Tokenizer.from_str(json.dumps(vocab.spec, ensure_ascii=False))


def test_bpe_trim_keeps_the_domains_tokens_and_the_merges_that_build_them(bpe) -> None:
    vocab, trimmed = _trimmed(bpe, LEGAL)
    assert len(vocab.old_ids) < bpe.get_vocab_size()
    check_same_tokens(bpe, trimmed, vocab, LEGAL)  # raises on any difference
    kept = set(vocab.spec["model"]["vocab"])
    assert all(a in kept and b in kept and a + b in kept for a, b in vocab.spec["model"]["merges"])
    for text in UNSEEN:  # other text falls back to smaller kept pieces (here: bytes) and still reads back whole
        ids = trimmed.encode(text).ids
        assert trimmed.decode(ids) == text and len(ids) >= len(bpe.encode(text).ids)


def test_wordpiece_trim_renumbers_the_special_tokens(minilm_dir: str) -> None:
    from tokenizers import Tokenizer

    original = Tokenizer.from_file(str(Path(minilm_dir) / "tokenizer.json"))
    texts = ["theft of public or private property", *UNSEEN]
    vocab, trimmed = _trimmed(original, texts)
    check_same_tokens(original, trimmed, vocab, texts)
    trimmed.no_padding()  # MiniLM's file pads to 128
    ids = trimmed.encode("theft").ids
    assert vocab.old_ids[ids[0]] == 101 and vocab.old_ids[ids[-1]] == 102  # [CLS] ... [SEP], renumbered
    assert vocab.new_id(0) == 0  # [PAD]
    with pytest.raises(ExportError):
        vocab.new_id(int(np.setdiff1d(np.arange(original.get_vocab_size()), vocab.old_ids)[0]))


def test_a_tokenizer_it_cannot_cut_is_refused_with_the_way_out() -> None:
    unigram = {"model": {"type": "Unigram", "vocab": [["<unk>", 0.0]]}, "added_tokens": []}
    with pytest.raises(ExportError, match="--embedder-vocab full"):
        trim_vocabulary(unigram, [0])


@needs_minilm
def test_the_trimmed_embedder_gives_the_products_vectors_from_a_smaller_graph(minilm_dir: str, tmp_path,
                                                                             monkeypatch) -> None:
    from slice_index import minilm_cfg

    from domains import load_domain
    from edge.export.embedder import export_query_embedder
    from edge.layout import EMBEDDER_GRAPH
    from edge.query_embedder import EdgeQueryEmbedder

    monkeypatch.setenv("DOSSIER_CACHE_DIR", str(tmp_path / "cache"))
    cfg = minilm_cfg(load_domain("legal"))
    cfg = replace(cfg, models=replace(cfg.models, embedder=minilm_dir))
    full = export_query_embedder(cfg, tmp_path / "full")
    cut = export_query_embedder(cfg, tmp_path / "cut", domain_texts=LEGAL)
    assert not full["vocabulary"]["trimmed"] and cut["vocabulary"]["trimmed"]
    assert cut["vocabulary"]["tokens"] < cut["vocabulary"]["of"] == 30522
    assert cut["check_cosine_min"] >= 0.999  # the export's own check against the product's onnx-int8 embedder
    assert (tmp_path / "cut" / EMBEDDER_GRAPH).stat().st_size < (tmp_path / "full" / EMBEDDER_GRAPH).stat().st_size
    before, after = (EdgeQueryEmbedder(tmp_path / name).load() for name in ("full", "cut"))
    for text in LEGAL:  # a text the trim saw: the same tokens, so the same vector
        assert float(before.embed([text])[0] @ after.embed([text])[0]) > 0.9999
