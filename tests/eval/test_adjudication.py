"""Hit@k with judged misses (eval/adjudication.py), `dossier eval adjudicate`, and the shipped judgments file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import main
from core.errors import ConfigError
from domains import load_domain
from eval.adjudication import Judgment, adjudicated_hits, read_judgments
from eval.evalsets import load_evalset, read_jsonl

SHIPPED = Path(__file__).resolve().parents[2] / "eval" / "data" / "lawyer_llama_consult_test_misses_judged.jsonl"

ROWS = [
    {"id": "hit", "gold": ["a"], "ranked": ["x", "a", "y"]},
    {"id": "found-basis", "gold": ["b"], "ranked": ["c", "d", "e"]},
    {"id": "basis-below-k", "gold": ["b"], "ranked": ["x", "y", "c"]},
    {"id": "real-miss", "gold": ["f"], "ranked": ["x", "y", "z"]},
    {"id": "bad-label", "gold": ["g"], "ranked": ["x", "y", "z"]},
    {"id": "new-miss", "gold": ["h"], "ranked": ["x", "y", "z"]},
]
JUDGED = {
    "found-basis": Judgment("found-basis", "basis-retrieved", ("d",)),
    "basis-below-k": Judgment("basis-below-k", "basis-retrieved", ("c",)),
    "real-miss": Judgment("real-miss", "retrieval-miss"),
    "bad-label": Judgment("bad-label", "no-usable-label"),
}


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_judged_basis_counts_only_inside_the_cut_off_and_unjudged_misses_stay_misses() -> None:
    result = adjudicated_hits(ROWS, JUDGED, k=2)
    assert result["hit@2"] == pytest.approx(1 / 6)
    assert result["adjudicated_hit@2"] == pytest.approx(2 / 6)  # "hit" and "found-basis"
    assert result["adjudicated_hit@2_usable_labels"] == pytest.approx(2 / 5)  # "bad-label" left out
    assert result["misses"] == 5
    assert result["unjudged_misses"] == 1
    assert result["basis_no_longer_in_top_k"] == 1  # "basis-below-k": its basis is third
    assert result["judged"] == {"basis-retrieved": 2, "no-usable-label": 1, "retrieval-miss": 1}
    assert adjudicated_hits(ROWS, JUDGED, k=3)["adjudicated_hit@3"] == pytest.approx(3 / 6)


def test_no_judgments_leaves_the_labelled_figure() -> None:
    result = adjudicated_hits(ROWS, {}, k=2)
    assert result["adjudicated_hit@2"] == result["hit@2"]
    assert result["unjudged_misses"] == 5


@pytest.mark.parametrize(("line", "reason"), [
    ({"id": "q", "judgment": "maybe"}, "not one of"),
    ({"id": "q", "judgment": "basis-retrieved", "basis": []}, "must name its basis"),
    ({"judgment": "partial"}, "no query id"),
])
def test_a_malformed_judgment_is_an_error_naming_it(tmp_path: Path, line: dict, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        read_judgments(_jsonl(tmp_path / "j.jsonl", [line]))


def test_rows_that_are_not_a_retrieval_run_are_an_error() -> None:
    with pytest.raises(ConfigError, match="not a retrieval run"):
        adjudicated_hits([{"id": "q", "answer": "..."}], JUDGED, k=5)


def test_a_query_judged_twice_is_an_error(tmp_path: Path) -> None:
    rows = [{"id": "q", "judgment": "partial"}, {"id": "q", "judgment": "retrieval-miss"}]
    with pytest.raises(ConfigError, match="judged twice"):
        read_judgments(_jsonl(tmp_path / "j.jsonl", rows))


def test_the_cli_reads_a_run_and_its_judgments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _jsonl(tmp_path / "hybrid.jsonl", ROWS)
    judged = _jsonl(tmp_path / "judged.jsonl", [
        {"id": j.query_id, "judgment": j.judgment, "basis": list(j.basis)} for j in JUDGED.values()])
    assert main(["eval", "adjudicate", str(run), "--judgments", str(judged), "-k", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["adjudicated_hit@2"] == pytest.approx(2 / 6)
    assert main(["eval", "adjudicate", str(tmp_path / "missing.jsonl"), "--judgments", str(judged)]) != 0


def test_the_shipped_judgments_name_test_questions_and_corpus_articles_the_gold_lacks() -> None:
    judged = read_judgments(SHIPPED)
    cfg = load_domain("legal")
    records = {r.record_id: r for r in load_evalset(cfg, "lawyer_llama_consult_article_retrieval").records}
    corpus = {row["doc_id"] for source in cfg.corpus for row in read_jsonl(cfg.path(source.path))}
    assert judged  # read_judgments already refused any unknown judgment
    for judgment in judged.values():
        record = records[judgment.query_id]
        assert record.split == "test", judgment.query_id  # judged on the split the figures are reported on
        assert judgment.note, judgment.query_id
        assert set(judgment.basis) <= corpus, judgment.query_id
        assert not set(judgment.basis) & set(record.gold_ids), judgment.query_id  # a miss: not the labelled gold
