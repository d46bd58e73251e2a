"""Paired comparison of two answer runs: rows made by the real answer run (MiniLM + BM25 over Criminal Law articles
232-276, the real pipeline and citation check), two scripted models answering the same questions."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from api_support import needs_minilm
from fakes import ScriptedGenerator

from core.errors import ConfigError
from eval.answer_cache import CachingGenerator
from eval.answer_items import AnswerItem
from eval.answer_run import run_items, summarise
from eval.paired import compare_paired, load_rows, paired_rows, paired_table
from rag.pipeline import RagPipeline

pytestmark = needs_minilm

ROBBERY = "以暴力、胁迫方法抢劫公私财物的怎样判？\nA. 死刑\nB. 三年以上十年以下有期徒刑\nC. 拘役\nD. 罚金"
MCQ = AnswerItem("m1", ROBBERY, "mcq", "B", tuple("ABCD"), source="mcq-set")
QA = AnswerItem("q1", "故意杀人罪判几年？", "reference", "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑。",
                source="qa-set")
COOKING = AnswerItem("u1", "What is the best way to roast a chicken?", "unanswerable", source="offtopic")
ITEMS = [MCQ, QA, COOKING]


def _rows(legal_cfg, slice_retriever, tmp_path: Path, name: str, *replies: str) -> list[dict]:
    generator = CachingGenerator(ScriptedGenerator(*replies), tmp_path / f"{name}.replies.jsonl", identity=name)
    greedy = replace(legal_cfg, generation=replace(legal_cfg.generation, temperature=0.0))
    pipeline = RagPipeline(greedy, slice_retriever, generator)
    return run_items(pipeline, ITEMS, retrieval=True, rows_path=tmp_path / name / "rows.jsonl")


@pytest.fixture
def two_runs(legal_cfg, slice_retriever, tmp_path: Path) -> tuple[list[dict], list[dict]]:
    worse = _rows(legal_cfg, slice_retriever, tmp_path, "base",
                  "抢劫的，处拘役[1]。答案是C", "故意杀人的，处五年以下有期徒刑[1]。")  # wrong option, wrong penalty
    better = _rows(legal_cfg, slice_retriever, tmp_path, "tuned",
                   "抢劫公私财物的，处三年以上十年以下有期徒刑[1]。答案是B",
                   "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑[1]。")
    return worse, better


def test_the_difference_of_each_metric_with_its_interval_and_the_questions_won(two_runs) -> None:
    base, tuned = two_runs
    by_name = {m.name: m for m in compare_paired(base, tuned, resamples=300)}
    whole_base, whole_tuned = summarise(base)["metrics"], summarise(tuned)["metrics"]
    for name, metric in by_name.items():  # the point values are the runs' own summaries
        assert (metric.a, metric.b) == (whole_base[name], whole_tuned[name])
    mcq = by_name["mcq_accuracy"]
    assert (mcq.a, mcq.b, mcq.difference) == (0.0, 1.0, 1.0) and (mcq.better, mcq.worse) == (1, 0)
    f1 = by_name["char_f1"]
    assert f1.difference > 0 and (f1.better, f1.worse) == (1, 0)  # the one reference question
    low, high = f1.ci95
    assert 0 <= low <= f1.difference <= high  # every resample favours the tuned run, or ties it
    assert by_name["abstention_f1"].difference == 0.0 and by_name["abstention_f1"].better is None


def test_the_same_run_twice_differs_by_nothing(two_runs) -> None:
    base, _ = two_runs
    for metric in compare_paired(base, list(reversed(base)), resamples=200):
        assert metric.difference in (0.0, None) and metric.ci95 in ((0.0, 0.0), None)
        assert metric.better in (0, None) and metric.worse in (0, None)


def test_runs_over_different_questions_are_refused(two_runs) -> None:
    base, tuned = two_runs
    with pytest.raises(ConfigError, match="1 only in the first, 0 only in the second"):
        paired_rows(base, tuned[:2])
    with pytest.raises(ConfigError, match="repeat"):
        paired_rows([*base, base[0]], tuned)
    with pytest.raises(ConfigError, match="hold no rows"):
        paired_rows([], [])


def test_dossier_eval_compare_paired(two_runs, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cli import main

    base_dir, tuned_dir = tmp_path / "base", tmp_path / "tuned"
    assert len(load_rows(base_dir)) == 3
    assert main(["eval", "compare", "--paired", "--resamples", "200", str(base_dir / "rows.jsonl"),
                 str(tuned_dir / "rows.jsonl")]) == 0
    table = capsys.readouterr().out
    assert "Paired over the same 3 questions, a 200-resample bootstrap" in table
    assert "| mcq_accuracy | 0.000 | 1.000 | +1.000 |" in table
    assert main(["eval", "compare", "--paired", "--json", str(base_dir), str(tuned_dir)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["n"] == 3 and found["metrics"]["char_f1"]["better"] == 1
    assert main(["eval", "compare", "--paired", str(base_dir)]) == 2  # one run: nothing to pair
    assert "--paired compares two runs, got 1" in capsys.readouterr().err
    assert main(["eval", "compare", "--paired", str(tmp_path / "nowhere"), str(base_dir)]) == 2
    assert "no rows.jsonl" in capsys.readouterr().err
    assert paired_table([], "a", "b", 0).startswith("Paired over the same 0 questions")
