"""`dossier eval retrieval` end to end: a tiny eval file over a tiny real index (MiniLM, FAISS, BM25, SQLite)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from cli import main
from models.registry import is_fetched

MODEL = "all-minilm-l6-v2"
pytestmark = pytest.mark.skipif(not is_fetched(MODEL), reason=f"needs: dossier models fetch {MODEL}")

PASSAGES = [
    ("p-bank", "The central bank raised interest rates by half a point to fight inflation."),
    ("p-merger", "Acme Corp agreed to acquire Widget Inc for two billion dollars in cash."),
    ("p-pledge", "The founder pledged ten million shares of the company as collateral for a loan."),
    ("p-ipo", "The chip maker listed its shares on the stock exchange in an initial public offering."),
    ("p-loss", "The airline reported a net loss for the third quarter because of fuel costs."),
]
QUESTIONS = [
    {"id": "q1", "question": "Who is Acme buying?", "gold_doc_ids": ["p-merger"], "generic_question": False},
    {"id": "q2", "question": "How many shares did the founder pledge as collateral?", "gold_doc_ids": ["p-pledge"],
     "generic_question": False},
    {"id": "q3", "question": "Why did the airline lose money?", "gold_doc_ids": ["p-loss"], "generic_question": False},
    {"id": "q4", "question": "A question without gold", "gold_doc_ids": [], "generic_question": False},
    {"id": "q5", "question": "企业收购事件对应的主体有哪些？", "gold_doc_ids": ["p-merger"], "generic_question": True},
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("faiss")
    from domains import load_domain
    from domains.config import CorpusSource
    from ingest.pipeline import run_ingest
    from ingest.store import ChunkStore
    from rag.build_retrieval import build_index_builder

    tmp = tmp_path_factory.mktemp("tiny-index")
    corpus = _jsonl(tmp / "corpus.jsonl", [{"doc_id": d, "text": t} for d, t in PASSAGES])
    cfg = load_domain("finance")
    shutil.copy(cfg.path(cfg.retrieval.user_dict), tmp / cfg.retrieval.user_dict)  # the same BM25 tokens
    cfg = replace(cfg, root=tmp, corpus=(CorpusSource(path=corpus.name, format="jsonl"),),
                  models=replace(cfg.models, embedder="all-minilm-l6-v2"))
    run_ingest(cfg, workspace=tmp / "ingest", progress=False)
    with ChunkStore(tmp / "ingest" / "chunks.sqlite") as store:
        build_index_builder(cfg, root=tmp / "index").update(store)
    return tmp / "index"


def _eval(tiny_index: Path, tmp_path: Path, *extra: str) -> list[str]:
    file = _jsonl(tmp_path / "tiny_eval.jsonl", QUESTIONS)
    return ["eval", "retrieval", "--domain", "finance", "--evalset", "fincuge_finqa", "--file", str(file),
            "--index-dir", str(tiny_index), "--embedder", "all-minilm-l6-v2", "-k", "1,3", "--out",
            str(tmp_path / "runs"), *extra]


def test_json_summary_per_configuration(tiny_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(_eval(tiny_index, tmp_path, "--json")) == 0
    summary = json.loads(capsys.readouterr().out)  # stdout holds only the summary
    assert summary["domain"] == "finance" and summary["evalset"] == "fincuge_finqa"
    assert summary["n"] == 3 and summary["skipped"] == 1 and summary["filtered"] == 1
    assert summary["config"] == "hybrid" and summary["metrics"] == summary["by_config"]["hybrid"]
    assert set(summary["by_config"]) == {"bm25", "dense", "hybrid"}
    assert "hybrid+rerank" in summary["unavailable"]  # no reranker configured for finance
    assert summary["by_config"]["dense"]["recall@3"] == 1.0  # three unambiguous English questions
    for metric in ("recall@1", "hit@3", "ndcg@3", "mrr"):
        assert 0.0 <= summary["metrics"][metric] <= 1.0
    run_dir = Path(summary["run_dir"])
    rows = [json.loads(line) for line in (run_dir / "dense.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"]
    assert rows[0]["ranked"][0] == "p-merger" and "dense" in rows[0]["hits"][0]["stage_scores"]
    assert json.loads((run_dir / "summary.json").read_text(encoding="utf-8")) == summary
    assert (run_dir / "recall.png").stat().st_size > 0


def test_table_and_user_errors(tiny_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(_eval(tiny_index, tmp_path, "--configs", "bm25", "--limit", "2")) == 0
    out = capsys.readouterr().out
    assert "bm25" in out and "R@3" in out and "n=2" in out
    assert main(_eval(tiny_index, tmp_path, "--configs", "bm25,colbert")) == 2
    assert "colbert" in capsys.readouterr().err
    assert main(_eval(tiny_index, tmp_path, "-k", "0")) == 2


def test_no_corpus_filter_ranks_the_whole_index(tiny_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A set's corpus_filter confines ranking to a gold pool; --no-corpus-filter ranks what a user's query meets."""
    from domains import load_domain

    finance = load_domain("finance")
    confined = tuple(replace(e, corpus_filter={"law_name": "nowhere"}) if e.name == "fincuge_finqa" else e
                     for e in finance.evalsets)
    monkeypatch.setattr("domains.load_domain", lambda name: replace(finance, evalsets=confined))
    assert main(_eval(tiny_index, tmp_path, "--configs", "dense", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["by_config"]["dense"]["recall@3"] == 0.0  # nothing passes the filter
    assert main(_eval(tiny_index, tmp_path, "--configs", "dense", "--json", "--no-corpus-filter")) == 0
    assert json.loads(capsys.readouterr().out)["by_config"]["dense"]["recall@3"] == 1.0


def test_a_filter_confines_every_query_and_a_malformed_one_is_a_usage_error(
        tiny_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(_eval(tiny_index, tmp_path, "--configs", "bm25", "--json", "--filter", "doc_id=p-pledge|p-loss")) == 0
    rows_dir = Path(json.loads(capsys.readouterr().out)["run_dir"])
    rows = [json.loads(line) for line in (rows_dir / "bm25.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {doc for row in rows for doc in row["ranked"]} <= {"p-pledge", "p-loss"}
    assert main(_eval(tiny_index, tmp_path, "--filter", "status")) == 2
    assert "--filter" in capsys.readouterr().err
