"""Hub correction: a chunk near every bank question gets a high hub score, a question never marks its own gold
a hub; the dense stage ranks by cosine - weight * hub score and keeps the raw cosine for the abstention threshold;
the retriever applies it from the domain's question bank, and refuses it without one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from api_support import needs_minilm

from core.errors import ConfigError
from retrieval.faiss_index import chunk_key
from retrieval.hubness import HubCorrection, hub_scores
from retrieval.question_bank import QuestionBank


def _unit(*rows: list[float]) -> np.ndarray:
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


BANK = QuestionBank("e", _unit([1, 0], [0.9, 0.1], [0, 1]), (("a",), ("b",), ("c",)))
KEYS = np.array([11, 12, 13], dtype=np.int64)  # doc a, a generic answer g, doc c
CHUNKS = _unit([1, 0], [0.7, 0.7], [0, 1])
KEYS_OF_DOC = {"a": [11], "g": [12], "c": [13]}


def test_the_generic_chunk_is_the_hub_and_a_question_never_marks_its_own_answer() -> None:
    hubs = hub_scores(KEYS, CHUNKS, BANK, neighbours=2, keys_of_doc=KEYS_OF_DOC)
    assert hubs.argmax() == 1  # near all three questions
    cosine = BANK.vectors @ CHUNKS.T
    # c's two nearest questions other than its own (q3 at cosine 1.0) are q2 and q1
    assert hubs[2] == pytest.approx((cosine[1, 2] + cosine[0, 2]) / 2, abs=1e-6)
    counted = hub_scores(KEYS, CHUNKS, BANK, neighbours=2, keys_of_doc={})  # nothing is anyone's gold
    assert counted[2] == pytest.approx((1.0 + cosine[1, 2]) / 2, abs=1e-6) and counted[2] > hubs[2] + 0.4


def test_the_blocks_give_what_one_pass_gives(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    bank = QuestionBank("e", _unit(*rng.normal(size=(40, 8)).tolist()), tuple((f"d{i}",) for i in range(40)))
    keys = np.arange(100, 400, dtype=np.int64)
    vectors = _unit(*rng.normal(size=(300, 8)).tolist())
    owners = {f"d{i}": [100 + 7 * i] for i in range(40)}
    whole = hub_scores(keys, vectors, bank, 5, owners)
    monkeypatch.setattr("retrieval.hubness.BLOCK", 64)
    assert np.allclose(hub_scores(keys, vectors, bank, 5, owners), whole)


def test_the_correction_reorders_and_keeps_the_raw_cosine() -> None:
    correction = HubCorrection(KEYS, np.array([0.5, 0.74, 0.05], np.float32), weight=0.5)
    scores = np.array([[0.80, 0.78, -3.4e38]], np.float32)
    keys = np.array([[12, 11, -1]], np.int64)
    corrected, order, cosines = correction.rerank(scores, keys)
    assert order.tolist() == [[11, 12, -1]]  # the hub fell below the answer it outscored by 0.02
    assert cosines[0, :2].tolist() == pytest.approx([0.78, 0.80])
    assert corrected[0, :2].tolist() == pytest.approx([0.78 - 0.25, 0.80 - 0.37])
    assert correction.of(np.array([999])).tolist() == pytest.approx([0.5])  # unseen: the median, not 0


def test_a_hub_weight_without_a_bank_is_refused() -> None:
    from domains.config import RetrievalConfig

    with pytest.raises(ConfigError, match="question_bank"):
        RetrievalConfig(hub_weight=0.5)
    with pytest.raises(ConfigError, match="hub_weight"):
        RetrievalConfig(hub_weight=-1.0, question_bank="models/bank.npz")


@pytest.fixture(scope="module")
def hub_cfg(tmp_path_factory: pytest.TempPathFactory, slice_retriever):
    """The slice's MiniLM config with a bank of English questions and the hub correction on, the bank's votes off."""
    from slice_index import legal_slice, minilm_cfg

    from domains import load_domain

    docs = {c.metadata["article_no"]: c.doc_id for c in legal_slice(range(232, 277))}
    questions = ["Someone killed another person on purpose", "What happens to a person who steals property",
                 "Is robbery with a weapon punished more", "A person was injured in a fight"]
    vectors = slice_retriever.embedder.embed(questions, role="query")
    gold = ("第二百三十二条", "第二百六十四条", "第二百六十三条", "第二百三十四条")
    bank = QuestionBank("all-minilm-l6-v2", vectors, tuple((docs[a],) for a in gold))
    path = bank.save(tmp_path_factory.mktemp("bank") / "bank.npz")
    cfg = minilm_cfg(load_domain("legal"))
    return replace(cfg, retrieval=replace(cfg.retrieval, question_bank=str(path), bank_weight=0.0, hub_weight=0.5,
                                          hub_neighbours=2, scope_weight=0.0, stages=("dense",)))


@needs_minilm
def test_the_retriever_ranks_by_the_corrected_score_and_abstention_reads_the_cosine(hub_cfg,
                                                                                    slice_retriever) -> None:
    from rag.build_retrieval import build_retriever

    question = "How is theft of a large amount punished?"
    corrected = build_retriever(hub_cfg, index_dir=slice_retriever.index_location)
    plain = build_retriever(replace(hub_cfg, retrieval=replace(hub_cfg.retrieval, hub_weight=0.0)),
                            index_dir=slice_retriever.index_location)
    found = corrected.retrieve([question], k=10)[0]
    hits = found.hits
    assert "hub" in found.timings_ms
    cosine = {h.chunk.chunk_id: h.score for h in plain.retrieve([question], k=40)[0].hits}
    assert "bank" not in hits[0].stage_scores  # bank_weight 0: the bank corrects hubs, it casts no votes
    hubs = corrected._hubs
    assert hubs is not None and len(hubs) == len(corrected.index.dense)
    for hit in hits:
        assert hit.stage_scores["dense"] == pytest.approx(cosine[hit.chunk.chunk_id])  # what abstention reads
        hub = hubs.of(np.array([chunk_key(hit.chunk.chunk_id)]))[0]
        assert hit.score == pytest.approx(cosine[hit.chunk.chunk_id] - 0.5 * hub, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

