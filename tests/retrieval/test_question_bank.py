"""The question bank: the nearest train questions vote for their gold documents (summed cosine); the votes are one
more list in the retriever's fusion, every voted hit carries its own dense cosine (so abstention still judges it),
a filter still binds; a bank from another embedder, or a broken file, is refused with the command that rebuilds it;
`dossier train bank` takes the train split only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from api_support import needs_minilm

from core.errors import ConfigError
from retrieval.question_bank import QuestionBank, ranked_votes

MURDER, THEFT = "Someone killed another person on purpose", "What happens to a person who steals property"


def _unit(*rows: list[float]) -> np.ndarray:
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_nearest_questions_vote_with_their_cosine() -> None:
    bank = QuestionBank("e", _unit([1, 0], [1, 0.2], [0, 1]), (("a", "b"), ("a",), ("c",)))
    votes = bank.votes(_unit([1, 0.1]), neighbours=2)[0]
    assert set(votes) == {"a", "b"}  # the third question is not among the two nearest
    assert votes["a"] > votes["b"] > 0.99  # "a" is gold for both neighbours: two votes
    assert set(bank.votes(_unit([1, 0.1]), neighbours=3)[0]) == {"a", "b", "c"}
    assert set(bank.votes(_unit([1, 0.1]), neighbours=3, min_cosine=0.5)[0]) == {"a", "b"}  # a stranger: no vote
    assert bank.votes(_unit([-1, 0]), neighbours=3, min_cosine=0.5) == [{}]


def test_votes_become_every_allowed_chunk_of_the_document_best_first() -> None:
    scores, keys = ranked_votes({"a": 0.5, "b": 0.9}, {"a": [1, 2], "b": [3]}, allowed={1, 3}, k=4)
    assert keys.tolist() == [3, 1, -1, -1] and scores[:2].tolist() == pytest.approx([0.9, 0.5])


def test_a_saved_bank_reads_back_and_a_broken_one_names_the_fix(tmp_path: Path) -> None:
    bank = QuestionBank("e", _unit([1, 0], [0.6, 0.8]), (("a",), ("b", "c")), ("set:train",))
    again = QuestionBank.load(bank.save(tmp_path / "bank.npz"))
    assert again.doc_ids == bank.doc_ids and again.embedder == "e" and again.sources == ("set:train",)
    assert np.abs(again.vectors - bank.vectors).max() < 1e-3  # float16 on disk
    (tmp_path / "broken.npz").write_bytes(b"not a bank")
    for path in (tmp_path / "broken.npz", tmp_path / "missing.npz"):
        with pytest.raises(ConfigError, match="dossier train bank"):
            QuestionBank.load(path)


def test_a_bank_leaves_out_the_questions_of_a_split_and_records_them(tmp_path: Path) -> None:
    bank = QuestionBank("e", _unit([1, 0], [0.6, 0.8], [0, 1]), (("a",), ("b",), ("c",)),
                        ("s:train", "s:dev"), ("train", "dev", "train"))
    kept = bank.without({"dev"})
    assert kept is not None and kept.doc_ids == (("a",), ("c",)) and kept.splits == ("train", "train")
    assert kept.sources == ("s:train",) and np.array_equal(kept.vectors, bank.vectors[[0, 2]])
    assert bank.without({"test"}) is bank and bank.without({"train", "dev"}) is None
    again = QuestionBank.load(bank.save(tmp_path / "bank.npz"))
    assert again.splits == ("train", "dev", "train")
    with pytest.raises(ConfigError, match="3 questions but 2 splits"):
        QuestionBank("e", bank.vectors, bank.doc_ids, (), ("train", "dev"))


def test_a_bank_written_before_splits_were_recorded_reads_as_train_questions(tmp_path: Path) -> None:
    from retrieval.array_file import write_arrays

    meta = {"format": 1, "embedder": "e", "doc_ids": [["a"], ["b"]], "sources": ["s:train"]}
    old = QuestionBank.load(write_arrays(tmp_path / "old.npz", meta, vectors=_unit([1, 0], [0, 1])))
    assert old.split_of_each() == ("train", "train") and old.without({"dev"}) is old
    assert old.without({"train"}) is None


def test_the_splits_left_out_are_split_names() -> None:
    from domains.config import RetrievalConfig
    from domains.config_parse import parse_section

    assert parse_section(RetrievalConfig, {"bank_leave_out": ["dev"]}, "retrieval").bank_leave_out == ("dev",)
    with pytest.raises(ConfigError, match="bank_leave_out"):
        parse_section(RetrievalConfig, {"bank_leave_out": ["dve"]}, "retrieval")


def test_the_test_split_never_enters_a_bank() -> None:
    from training.retriever.question_bank import bank_splits

    assert bank_splits("train") == ("train",) and bank_splits("dev,train") == ("train", "dev")
    with pytest.raises(ConfigError, match="test split never enters a bank"):
        bank_splits("train,test")


@pytest.fixture(scope="module")
def bank_cfg(tmp_path_factory: pytest.TempPathFactory, slice_retriever):
    """The slice's MiniLM config with a bank of two English questions: murder -> article 232, theft -> 264."""
    from slice_index import legal_slice, minilm_cfg

    from domains import load_domain

    docs = {c.metadata["article_no"]: c.doc_id for c in legal_slice(range(232, 277))}
    vectors = slice_retriever.embedder.embed([MURDER, THEFT], role="query")
    bank = QuestionBank("all-minilm-l6-v2", vectors, ((docs["第二百三十二条"],), (docs["第二百六十四条"],)))
    path = bank.save(tmp_path_factory.mktemp("bank") / "bank.npz")
    cfg = minilm_cfg(load_domain("legal"))
    return replace(cfg, retrieval=replace(cfg.retrieval, question_bank=str(path), bank_weight=2.0,
                                          bank_neighbours=1)), docs


@needs_minilm
def test_the_bank_brings_the_article_an_earlier_question_found(bank_cfg, slice_retriever) -> None:
    from rag.build_retrieval import build_retriever

    cfg, docs = bank_cfg
    question = "A man killed his neighbour on purpose. What is the punishment?"  # no word the Chinese articles share
    banked = build_retriever(cfg, index_dir=slice_retriever.index_location)
    hits = banked.retrieve([question], k=5)[0].hits
    assert hits[0].chunk.doc_id == docs["第二百三十二条"]
    assert {"bank", "dense"} <= set(hits[0].stage_scores)  # its own cosine, for the abstention threshold
    before = [h.chunk.doc_id for h in slice_retriever.retrieve([question], k=5)[0].hits]
    assert before[:1] != [docs["第二百三十二条"]]  # the bank is what put it first
    filtered = banked.retrieve([question], k=5, filters={"article_no": "第二百六十四条"})[0].hits
    assert [h.chunk.doc_id for h in filtered] == [docs["第二百六十四条"]]  # a filter still binds


@needs_minilm
def test_an_evaluation_of_a_split_never_meets_its_own_questions_in_the_bank(bank_cfg, slice_retriever,
                                                                             tmp_path) -> None:
    """The murder question sits in the bank as a dev question: serving, and evaluating test, it votes; evaluating
    dev, the retriever sees the bank without it, exactly as a bank that never held it."""
    from eval.splits import leave_out_of_bank
    from rag.build_retrieval import build_retriever

    cfg, docs = bank_cfg
    bank = QuestionBank.load(Path(cfg.retrieval.question_bank))
    path = QuestionBank(bank.embedder, bank.vectors, bank.doc_ids, ("s:train", "s:dev"), ("dev", "train")).save(
        tmp_path / "train-dev.npz")
    banked = replace(cfg, retrieval=replace(cfg.retrieval, question_bank=str(path)))
    question = "A man killed his neighbour on purpose. What is the punishment?"

    def first(config) -> str:
        retriever = build_retriever(config, index_dir=slice_retriever.index_location)
        return retriever.retrieve([question], k=5)[0].hits[0].chunk.doc_id

    assert first(banked) == first(leave_out_of_bank(banked, {"test"})) == docs["第二百三十二条"]
    assert first(leave_out_of_bank(banked, {"dev"})) != docs["第二百三十二条"]
    twice = leave_out_of_bank(leave_out_of_bank(banked, {"dev"}), {"train"})
    assert twice.retrieval.bank_leave_out == ("dev", "train")
    nothing_left = leave_out_of_bank(banked, {"train", "dev"})
    assert build_retriever(nothing_left, index_dir=slice_retriever.index_location).bank is None


@needs_minilm
def test_a_bank_from_another_embedder_is_refused(bank_cfg, slice_retriever, tmp_path) -> None:
    from rag.build_retrieval import build_retriever

    cfg, _ = bank_cfg
    other = QuestionBank.load(Path(cfg.retrieval.question_bank))
    path = QuestionBank("embeddinggemma-300m", other.vectors, other.doc_ids).save(tmp_path / "other.npz")
    with pytest.raises(ConfigError, match="dossier train bank"):
        build_retriever(replace(cfg, retrieval=replace(cfg.retrieval, question_bank=str(path))),
                        index_dir=slice_retriever.index_location)


@needs_minilm
def test_train_bank_takes_the_train_split_only(bank_cfg, slice_retriever) -> None:
    from eval.evalsets import load_evalset
    from training.retriever.question_bank import build_bank

    cfg, _ = bank_cfg
    name = "lawyer_llama_consult_article_retrieval"
    bank, counts = build_bank(cfg, [name], slice_retriever.embedder)
    splits = {s: load_evalset(cfg, name, splits=frozenset({s})).records for s in ("train", "dev", "test")}
    assert counts == {f"{name}:train": len(bank.doc_ids)} == {f"{name}:train": sum(1 for r in splits["train"]
                                                                                   if r.gold_ids)}
    assert bank.sources == (f"{name}:train",) and bank.embedder == cfg.models.embedder
    assert bank.split_of_each() == ("train",) * len(bank.doc_ids)
    assert list(bank.doc_ids) == [tuple(r.gold_ids) for r in splits["train"] if r.gold_ids]
    assert len(bank.vectors) < len(splits["train"]) + len(splits["dev"]) + len(splits["test"])


def test_a_bank_takes_qa_sets_that_name_documents_and_refuses_the_others() -> None:
    from domains import load_domain
    from training.retriever.question_bank import bank_sets

    cfg = load_domain("legal")
    assert bank_sets(cfg, []) == [s.name for s in cfg.evalsets if s.kind == "retrieval"]
    assert bank_sets(cfg, ["lawbench_consultation"]) == ["lawbench_consultation"]  # QA answers cite statutes
    with pytest.raises(ConfigError, match="jecqa_lawbench_mcq is not a retrieval or QA set"):
        bank_sets(cfg, ["jecqa_lawbench_mcq"])


def test_a_scope_leads_only_with_its_share_of_the_votes() -> None:
    from retrieval.scope import ScopeMap

    metadata = [(1, {"law_id": "criminal"}), (2, {"law_id": "criminal"}), (3, {"law_id": "civil"}), (4, {})]
    scopes = ScopeMap(metadata, {"a": [1], "b": [2], "c": [3], "d": [4]}, "law_id")
    assert scopes.keys["criminal"].tolist() == [1, 2] and "d" not in scopes.scope_of_doc
    assert scopes.leading({"a": 0.9, "b": 0.8, "c": 0.7}, min_share=0.6) == "criminal"  # 1.7 of 2.4
    assert scopes.leading({"a": 0.9, "c": 0.8}, min_share=0.6) is None  # the neighbours disagree
    assert scopes.leading({}, min_share=0.6) is None and scopes.leading({"d": 1.0}, min_share=0.6) is None


@needs_minilm
def test_the_scope_stage_searches_inside_the_chapter_the_neighbours_point_to(bank_cfg, slice_retriever) -> None:
    from rag.build_retrieval import build_retriever
    from retrieval.hybrid import SCOPE_STAGE

    cfg, docs = bank_cfg
    cfg = replace(cfg, retrieval=replace(cfg.retrieval, scope_field="chapter", scope_weight=4.0, scope_min_share=0.6))
    scoped = build_retriever(cfg, index_dir=slice_retriever.index_location)
    question = "What happens to a person who steals property from a shop?"  # near the bank's theft question
    hits = scoped.retrieve([question], k=10)[0].hits
    from_scope = [h for h in hits if SCOPE_STAGE in h.stage_scores]
    assert from_scope, "the theft question's neighbour leads to the property chapter"
    assert {h.chunk.metadata["chapter"] for h in from_scope} == {"第五章 侵犯财产罪"}
    assert all(h.stage_scores["dense"] == h.stage_scores[SCOPE_STAGE] for h in from_scope)  # abstention reads it
    far = replace(cfg, retrieval=replace(cfg.retrieval, scope_min_cosine=0.99))  # no neighbour near enough
    unscoped = build_retriever(far, index_dir=slice_retriever.index_location).retrieve([question], k=10)[0].hits
    assert not any(SCOPE_STAGE in h.stage_scores for h in unscoped)
    filtered = scoped.retrieve([question], k=5, filters={"article_no": "第二百三十二条"})[0].hits
    assert [h.chunk.doc_id for h in filtered] == [docs["第二百三十二条"]]  # a filter still binds the scope list
    silent = replace(cfg, retrieval=replace(cfg.retrieval, bank_weight=0.0))  # the votes still lead the scope
    hits = build_retriever(silent, index_dir=slice_retriever.index_location).retrieve([question], k=10)[0].hits
    assert any(SCOPE_STAGE in h.stage_scores for h in hits) and not any("bank" in h.stage_scores for h in hits)


@needs_minilm
def test_the_scope_router_sets_each_questions_scope_weight(bank_cfg, slice_retriever, tmp_path) -> None:
    from rag.build_retrieval import build_retriever
    from retrieval.scope_router import ScopeRouter

    cfg, _ = bank_cfg
    cfg = replace(cfg, retrieval=replace(cfg.retrieval, scope_field="chapter", scope_weight=0.1,
                                         scope_weight_routed=4.0, scope_min_share=0.6))
    questions = ["What happens to a person who steals property from a shop?", MURDER]

    def ranked(config, bias: float | None = None) -> list[list[tuple[str, float]]]:
        if bias is not None:  # a router whose logit is its bias: every question routed (> 0) or none (< 0)
            path = ScopeRouter("all-minilm-l6-v2", np.zeros(slice_retriever.embedder.dim, np.float32), bias).save(
                tmp_path / f"router{bias}.npz")
            config = replace(config, retrieval=replace(config.retrieval, scope_router=str(path)))
        found = build_retriever(config, index_dir=slice_retriever.index_location).retrieve(questions, k=10)
        return [[(h.chunk.chunk_id, round(h.score, 5)) for h in r.hits] for r in found]

    at_routed = replace(cfg, retrieval=replace(cfg.retrieval, scope_weight=4.0))
    plain, high = ranked(cfg), ranked(at_routed)
    assert plain != high  # the weight matters for these questions, so the comparisons below can fail
    assert ranked(cfg, bias=1.0) == high and ranked(cfg, bias=-1.0) == plain
