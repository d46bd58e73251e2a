import json
from pathlib import Path

import pytest

from eval.ragas_table import bootstrap_ci, main, markdown, run_stats

ROWS = [
    {"id": "a", "key": "k1", "faithfulness": 1.0, "answer_relevancy": 0.5, "context_recall": 1.0, "failures": {}},
    {"id": "b", "key": "k2", "faithfulness": 0.5, "answer_relevancy": 0.7, "context_recall": None,
     "failures": {"context_recall": "LengthFinishReasonError"}},
    {"id": "c", "key": "k3", "faithfulness": 0.0, "answer_relevancy": None, "context_recall": 0.0,
     "failures": {"answer_relevancy": "nan"}},
    {"id": "d", "skipped": "abstained"},
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_failed_cells_are_counted_beside_the_mean_and_never_averaged_in() -> None:
    stats = run_stats(ROWS)
    assert (stats["rows"], stats["judged"], stats["abstained"]) == (4, 3, 1)
    recall = stats["metrics"]["context_recall"]
    assert recall["mean"] == pytest.approx(0.5) and recall["scored"] == 2 and recall["failures"] == 1
    relevancy = stats["metrics"]["answer_relevancy"]
    assert relevancy["mean"] == pytest.approx(0.6) and relevancy["failures"] == 1
    faith = stats["metrics"]["faithfulness"]
    assert faith["mean"] == pytest.approx(0.5) and faith["failures"] == 0
    low, high = faith["ci95"]
    assert 0.0 <= low < 0.5 < high <= 1.0


def test_the_interval_is_reproducible_and_absent_for_a_single_value() -> None:
    values = [0.1, 0.9, 0.4, 0.6, 0.5]
    assert bootstrap_ci(values) == bootstrap_ci(values)
    assert bootstrap_ci([0.7]) is None
    assert bootstrap_ci([0.3, 0.3, 0.3]) == (pytest.approx(0.3), pytest.approx(0.3))


def test_a_metric_every_cell_of_which_failed_reads_as_failed_not_zero() -> None:
    stats = run_stats([{"id": "a", "faithfulness": None, "failures": {"faithfulness": "TimeoutError"}}])
    table = markdown({"legal": stats})
    assert "— (1 failed)" in table and "0.000" not in table


def test_the_cli_labels_runs_by_file_name_or_label(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _write(tmp_path / "finance-fincuge_finqa.judge-out.jsonl", ROWS)
    second = _write(tmp_path / "other.jsonl", ROWS[:1])
    assert main([str(first), f"medical={second}"]) == 0
    table = capsys.readouterr().out
    assert "| finance-fincuge_finqa | 3 | 1 |" in table and "| medical | 1 | 0 |" in table
    assert "context_precision" not in table  # no row carries it
    assert main([str(first), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["finance-fincuge_finqa"]["metrics"]["context_recall"]["failures"] == 1


def test_runs_judge_files_are_labelled_by_their_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = []
    for run in ("finance-fincuge_finqa-base-rag-test", "medical-huatuo26m_test_qa-base-rag-test"):
        (tmp_path / run / "judge").mkdir(parents=True)
        files.append(str(_write(tmp_path / run / "judge" / "judge-out.jsonl", ROWS)))
    assert main(files) == 0
    table = capsys.readouterr().out
    assert "| finance-fincuge_finqa-base-rag-test | 3 |" in table
    assert "| medical-huatuo26m_test_qa-base-rag-test | 3 |" in table


def test_a_missing_or_cut_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([str(tmp_path / "absent.jsonl")])
    assert "no such score file" in capsys.readouterr().err
    cut = tmp_path / "cut.jsonl"
    cut.write_text(json.dumps(ROWS[0]) + "\n" + '{"id": "b", "faith', encoding="utf-8")
    with pytest.raises(SystemExit):
        main([str(cut)])
    assert "cut.jsonl:2" in capsys.readouterr().err
