"""Threshold choice on hand-made score lists, and the one-line domain.toml update."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fakes import FunctionRetriever

from core.records import Chunk, Hit
from core.stages import GATE_STAGE
from domains import DOMAINS_DIR, load_domain_file
from eval.calibrate import OFFTOPIC, choose_threshold, rates, threshold_at_false_abstention, write_threshold
from eval.evalsets import read_jsonl


def test_separable_scores_get_a_perfect_threshold() -> None:
    choice = choose_threshold([0.8, 0.7, 0.9], [0.2, 0.3, 0.1])
    assert 0.3 < choice.threshold < 0.7
    assert choice.balanced_accuracy == 1.0 and choice.false_abstention == 0.0 and choice.false_answer == 0.0


def test_overlapping_scores_maximise_balanced_accuracy() -> None:
    ins, outs = [0.5, 0.6, 0.7, 0.8], [0.1, 0.2, 0.3, 0.65]
    choice = choose_threshold(ins, outs)
    # at 0.4 (midpoint of 0.3 and 0.5): in-domain 4/4 answered, out 3/4 abstained -> 0.875; over 0.65 only 0.75
    assert choice.balanced_accuracy == pytest.approx(0.875)
    assert choice.threshold == pytest.approx(0.4)
    assert rates(ins, outs, choice.threshold) == choice
    assert rates(ins, outs, 0.675).balanced_accuracy == pytest.approx(0.75)
    with pytest.raises(ValueError):
        choose_threshold([], [0.1])


def test_threshold_at_false_abstention_rate() -> None:
    ins = [i / 100 for i in range(100)]
    threshold = threshold_at_false_abstention(ins, [0.0], 0.05)
    assert rates(ins, [0.0], threshold).false_abstention == pytest.approx(0.05)


def test_write_threshold_edits_only_that_line(tmp_path: Path) -> None:
    shutil.copy(DOMAINS_DIR / "legal" / "domain.toml", tmp_path / "domain.toml")
    before = (tmp_path / "domain.toml").read_text(encoding="utf-8").splitlines()
    cfg = load_domain_file(tmp_path / "domain.toml")
    write_threshold(cfg, 0.42137, date="2026-11-01")
    after = (tmp_path / "domain.toml").read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].startswith("threshold = 0.4214  # calibrated by `dossier eval")
    assert load_domain_file(tmp_path / "domain.toml").abstention.threshold == pytest.approx(0.4214)


def test_offtopic_queries_ship() -> None:
    rows = list(read_jsonl(OFFTOPIC))
    assert len(rows) >= 20 and all(r["question"] for r in rows)


def _fixed_score_retriever(scores: dict[str, float]) -> FunctionRetriever:
    """Every query gets one hit whose dense score is looked up from a table."""
    chunk = Chunk(chunk_id="c", doc_id="d", text="t", start=0, end=1)
    return FunctionRetriever(lambda q: [Hit(chunk, scores[q], "dense", {"dense": scores[q]})])


def test_scored_queries_use_the_pipelines_best_score() -> None:
    from eval.calibrate import scored_queries

    retriever = _fixed_score_retriever({"a": 0.9, "b": 0.2, "c": 0.4})
    out = scored_queries(retriever, {"in": ["a", "c"], "out": ["b"]}, k=5, key="dense")
    assert out == {"in": [(0.9, False), (0.4, False)], "out": [(0.2, False)]}  # no gate: nothing refused
    assert scored_queries(retriever, {"in": ["a"]}, k=5, key="rerank") == {"in": []}  # no rerank score: left out


def _gated_retriever(scores: dict[str, float], margins: dict[str, float]) -> FunctionRetriever:
    """One hit a query, with its dense score and the domain gate's margin (negative: refused)."""
    chunk = Chunk(chunk_id="c", doc_id="d", text="t", start=0, end=1)
    return FunctionRetriever(lambda q: [Hit(chunk, scores[q], "dense", {"dense": scores[q], GATE_STAGE: margins[q]})])


def test_the_gate_view_reads_what_the_threshold_still_meets() -> None:
    from eval.calibrate import gate_view, scored_queries

    scores = {"in1": 0.8, "in2": 0.5, "in3": 0.3, "legal": 0.6, "off1": 0.35, "off2": 0.1}
    margins = {"in1": 1.0, "in2": 0.5, "in3": -0.2, "legal": -2.0, "off1": 0.3, "off2": -1.0}
    retriever = _gated_retriever(scores, margins)
    in_scored = scored_queries(retriever, {"own": ["in1", "in2", "in3"]}, k=5, key="dense")
    out_scored = scored_queries(retriever, {"legal": ["legal"], "offtopic": ["off1", "off2"]}, k=5, key="dense")
    assert in_scored == {"own": [(0.8, False), (0.5, False), (0.3, True)]}
    view = gate_view(in_scored, out_scored)
    assert view["refused"] == {"own": pytest.approx(1 / 3, abs=1e-4), "legal": 1.0, "offtopic": 0.5}
    # after the gate: in 0.8, 0.5 against out 0.35 alone -> any bar between 0.35 and 0.5 separates them
    assert (view["n_in_after_gate"], view["n_out_after_gate"]) == (2, 1)
    assert view["after_gate"]["threshold"] == pytest.approx(0.425) and view["after_gate"]["balanced_accuracy"] == 1.0
    everything_gated = gate_view(in_scored, {"legal": [(0.6, True)]})
    assert everything_gated["after_gate"] is None and everything_gated["n_out_after_gate"] == 0
