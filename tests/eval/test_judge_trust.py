"""The judge-trust comparison: the shipped labels load, and agreement / kappa come out right on hand-made scores."""

import json

import pytest

from eval.judge_trust import agreement, load_labels, main, read_scores


def test_shipped_labels_are_twenty_real_answers_with_a_reason_each():
    rows = load_labels()
    assert len(rows) == 20
    assert {r["domain"] for r in rows} == {"legal", "medical", "finance"}
    assert all(r["why"] and r["contexts"] for r in rows)
    assert sum(r["faithful"] is False for r in rows) >= 3


def _labels(*values):
    return [{"id": str(i), "faithful": v, "why": f"row {i}"} for i, v in enumerate(values)]


def test_agreement_counts_each_cell_and_skips_unlabelled_and_failed_rows():
    labels = _labels(True, True, False, False, None, True)
    scores = {"0": 1.0, "1": 0.2, "2": 0.9, "3": 0.0, "4": 1.0, "5": None}
    r = agreement(labels, scores)
    assert (r["tp"], r["fn"], r["fp"], r["tn"]) == (1, 1, 1, 1)
    assert r["n"] == 4 and r["unlabelled"] == 1 and r["judge_failures"] == 1
    assert r["agreement"] == 0.5 and r["kappa"] == pytest.approx(0.0)
    assert r["unfaithful_caught"] == 0.5
    assert [d["id"] for d in r["disagreements"]] == ["1", "2"]


def test_kappa_is_one_on_perfect_agreement_and_zero_when_the_judge_always_says_faithful():
    labels = _labels(True, True, False)
    assert agreement(labels, {"0": 1.0, "1": 0.6, "2": 0.1})["kappa"] == pytest.approx(1.0)
    always = agreement(labels, {"0": 1.0, "1": 1.0, "2": 1.0})
    assert always["kappa"] == pytest.approx(0.0) and always["unfaithful_caught"] == 0.0


def test_a_label_other_than_true_false_null_is_refused(tmp_path):
    path = tmp_path / "labels.jsonl"
    row = {"id": "a", "domain": "legal", "question": "q", "answer": "a", "contexts": ["c"], "faithful": "yes",
           "why": "w"}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="true, false or null"):
        load_labels(path)


def test_main_compares_a_finished_judge_run(tmp_path, capsys):
    ids = [r["id"] for r in load_labels()]
    out = tmp_path / "judge-out.jsonl"
    out.write_text("".join(json.dumps({"id": i, "faithfulness": 1.0, "failures": {}}) + "\n" for i in ids),
                   encoding="utf-8")
    assert read_scores(out)[ids[0]] == 1.0
    assert main(["--scores", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 19 and result["fp"] == 3 and result["kappa"] == pytest.approx(0.0)
