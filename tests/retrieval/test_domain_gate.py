"""The domain gate: a class-balanced logistic regression over the domain's query vectors, its threshold chosen to keep
a share of the domain's dev questions, saved and refused like the question bank, and read on every hit of the real
HybridRetriever."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from core.errors import ConfigError
from core.stages import GATE_STAGE
from retrieval.domain_gate import DomainGate, gate_for
from training.retriever.domain_gate import (
    build_gate,
    exclude_pattern,
    fit_logistic,
    general_questions,
    keeping_threshold,
    refused_by_source,
)


def _clusters(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centre = np.zeros(16)
    centre[0] = 1.5
    x = np.vstack([rng.normal(centre, 1.0, (n, 16)), rng.normal(-centre, 1.0, (3 * n, 16))])  # unbalanced
    return x.astype(np.float32), np.r_[np.ones(n), np.zeros(3 * n)]


def test_the_fit_separates_two_clusters_and_balances_their_sizes() -> None:
    x, y = _clusters(200)
    weights, bias = fit_logistic(x, y)
    assert weights[0] > 5 * np.abs(weights[1:]).max()  # the one direction that separates them
    test_x, test_y = _clusters(200, seed=1)
    predicted = test_x @ weights + bias >= 0
    assert (predicted[test_y > 0]).mean() > 0.9 and (~predicted[test_y == 0]).mean() > 0.9  # neither side favoured


def test_the_threshold_keeps_the_asked_share() -> None:
    logits = np.arange(100, dtype=np.float32)
    assert (logits >= keeping_threshold(logits, 0.99)).mean() == 0.99
    assert keeping_threshold(logits, 1.0) == 0.0
    with pytest.raises(ConfigError, match="--keep"):
        keeping_threshold(logits, 0.0)


def test_a_gate_round_trips_and_a_broken_file_names_the_command(tmp_path) -> None:
    gate = DomainGate("all-minilm-l6-v2", np.ones(4, np.float32), -1.0, 0.5, {"keep": 0.99})
    loaded = DomainGate.load(gate.save(tmp_path / "gate.npz"), "legal")
    assert loaded.embedder == gate.embedder and loaded.threshold == 0.5 and loaded.report == {"keep": 0.99}
    np.testing.assert_allclose(loaded.margins(np.eye(4, dtype=np.float32)), [-0.5] * 4)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="dossier train gate --domain legal"):
        DomainGate.load(tmp_path / "bad.npz", "legal")
    with pytest.raises(ConfigError, match="missing"):
        DomainGate.load(tmp_path / "none.npz", "legal")


def test_a_gate_fitted_on_the_domains_questions_keeps_its_dev_share(slice_retriever, legal_cfg) -> None:
    gate = build_gate(legal_cfg, slice_retriever.embedder, per_set=24, keep=0.9)
    report = gate.report
    assert gate.embedder == "all-minilm-l6-v2" and gate.weights.shape == (slice_retriever.embedder.dim,)
    assert report["dev_kept_in_domain"] >= 0.9
    assert any(k.startswith("legal/") for k in report["train"]) and any(k.startswith("finance/") for k in
                                                                         report["train"])
    assert all(not k.endswith("cail2018_charges") for k in report["train"])  # a label set, not questions


def test_general_questions_split_by_their_text_and_join_the_negatives(slice_retriever, legal_cfg, tmp_path) -> None:
    lines = [{"prompt": f"写一首关于第{i}个季节的诗"} for i in range(40)]
    lines += [{"question": "周末去哪里玩？"}, {"other": 1}]  # either field; a record with neither is passed over
    path = tmp_path / "general.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in lines) + "\n", encoding="utf-8")
    train, dev = general_questions(path, "train", 100), general_questions(path, "dev", 100)
    assert not set(train.texts) & set(dev.texts) and len(train.texts) + len(dev.texts) == 41
    assert 0 < len(dev.texts) < len(train.texts)  # a fifth by hash, not by position
    assert general_questions(path, "dev", 100).texts == dev.texts  # the same split every time
    gate = build_gate(legal_cfg, slice_retriever.embedder, per_set=24, keep=0.9, negatives=path)
    assert gate.report["train"]["general/general.jsonl"] == min(24, len(train.texts))
    (tmp_path / "empty.jsonl").write_text('{"other": 1}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="no question or prompt"):
        general_questions(tmp_path / "empty.jsonl", "train", 10)
    assert gate.report["dev_refused_by_source"].keys() == {k for k, n in gate.report["dev"].items() if n}


def test_negatives_that_match_the_exclude_pattern_are_passed_over(tmp_path) -> None:
    lines = [{"prompt": f"写一首关于第{i}个季节的诗"} for i in range(30)]
    lines += [{"prompt": f"第{i}次发烧了该吃什么药？"} for i in range(30)]  # the domain's own kind of question
    path = tmp_path / "general.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in lines) + "\n", encoding="utf-8")
    pattern = exclude_pattern("药|病")
    for split in ("train", "dev"):
        kept = general_questions(path, split, 100, pattern).texts
        assert kept and not any("药" in t for t in kept)
        assert set(kept) == {t for t in general_questions(path, split, 100).texts if "药" not in t}
    with pytest.raises(ConfigError, match="passed over by the exclude pattern"):
        general_questions(path, "train", 100, exclude_pattern("."))
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        exclude_pattern("(药")
    assert exclude_pattern("") is None


def test_refused_share_is_read_per_source_in_embedding_order() -> None:
    logits = np.array([1.0, 2.0, -1.0, 0.5, -3.0, -2.0, 4.0])
    counts = {"legal/a": 2, "finance/b": 2, "medical/c": 0, "general/g.jsonl": 3}
    assert refused_by_source(logits, counts, threshold=0.0) == {"legal/a": 0.0, "finance/b": 0.5,
                                                                "general/g.jsonl": 0.6667}


def _with_gate(retriever, gate: DomainGate):
    """The slice's retriever again, over the same index and embedder, with `gate`."""
    return retriever.__class__(retriever.cfg, index_location=retriever.index_location, embedder=retriever.embedder,
                               tokenizer=retriever.tokenizer, faiss_spec=retriever.faiss_spec, gate=gate).load()


def test_every_hit_carries_the_gate_margin_and_a_foreign_embedder_is_refused(slice_retriever) -> None:
    refusing = DomainGate("all-minilm-l6-v2", np.zeros(slice_retriever.embedder.dim, np.float32), -3.0, 0.0)
    hits = _with_gate(slice_retriever, refusing).retrieve(["盗窃数额较大怎么处罚"])[0].hits
    assert hits and all(h.stage_scores[GATE_STAGE] == pytest.approx(-3.0) for h in hits)
    assert GATE_STAGE not in slice_retriever.retrieve(["盗窃数额较大怎么处罚"])[0].hits[0].stage_scores
    with pytest.raises(ConfigError, match="dossier train gate"):
        _with_gate(slice_retriever, replace(refusing, embedder="embeddinggemma-300m"))


def test_the_domain_names_its_gate_by_path(legal_cfg, tmp_path) -> None:
    assert gate_for(replace(legal_cfg, retrieval=replace(legal_cfg.retrieval, domain_gate=""))) is None
    path = DomainGate("all-minilm-l6-v2", np.ones(4, np.float32), 0.0, 0.0).save(tmp_path / "models" / "g.npz")
    named = replace(legal_cfg, root=tmp_path, retrieval=replace(legal_cfg.retrieval, domain_gate="models/g.npz"))
    gate = gate_for(named)
    assert gate is not None and gate.weights.shape == (4,) and path.is_file()
