"""Answer runs over the real retrieval path (MiniLM + BM25 over Criminal Law articles 232-276, the real pipeline):
scores of hand-made answers, hidden gold, abstention, resume from the reply cache, and `dossier eval answers` end
to end with the tiny real transformers model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from api_support import needs_minilm
from fakes import ScriptedGenerator
from slice_index import legal_slice

from eval.answer_cache import CachingGenerator
from eval.answer_items import AnswerItem, set_items, unanswerable_items
from eval.answer_run import RunSpec, run_items, summarise
from rag.pipeline import RagPipeline

pytestmark = needs_minilm

MURDER = legal_slice(range(232, 233))[0]

MCQ_TEXT = "以暴力、胁迫方法抢劫公私财物的怎样判？\nA. 死刑\nB. 三年以上十年以下有期徒刑\nC. 拘役\nD. 罚金"
MCQ = AnswerItem("m1", MCQ_TEXT,
                 "mcq", "B", tuple("ABCD"), source="mcq-set")
QA = AnswerItem("q1", "故意杀人罪判几年？", "reference", "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑。",
                gold_ids=(MURDER.doc_id,), source="qa-set")
COOKING = AnswerItem("u1", "What is the best way to roast a chicken?", "unanswerable", source="offtopic")
HIDDEN = AnswerItem("u2", "故意杀人罪判几年？", "unanswerable", source="hidden-gold:x", hidden_ids=(MURDER.doc_id,))


def _pipeline(legal_cfg, slice_retriever, tmp_path: Path, *replies: str) -> RagPipeline:
    generator = CachingGenerator(ScriptedGenerator(*replies), tmp_path / "replies.jsonl", identity="scripted")
    greedy = replace(legal_cfg, generation=replace(legal_cfg.generation, temperature=0.0))  # sampled: not cached
    return RagPipeline(greedy, slice_retriever, generator)


def test_scores_of_hand_made_answers(legal_cfg, slice_retriever, tmp_path: Path) -> None:
    cfg = legal_cfg
    pipeline = _pipeline(cfg, slice_retriever, tmp_path,
                         "抢劫公私财物的，处三年以上十年以下有期徒刑[1]。答案是B",
                         "故意杀人的，处五年以下有期徒刑[1]。")  # a wrong penalty under a real article
    rows = run_items(pipeline, [MCQ, QA, COOKING], retrieval=True, rows_path=tmp_path / "rows.jsonl")
    mcq, qa, cooking = rows
    assert mcq["picked"] == "B" and mcq["mcq_correct"] == 1.0 and not mcq["unparseable"]
    assert mcq["evidence_recall"] is None and mcq["prompt"][-1]["role"] == "user"  # the set has no gold ids
    assert qa["citation_precision"] == 0.0 and "5年以下" in qa["unsupported"][0]["reason"]
    assert qa["cited_doc_ids"] == [MURDER.doc_id] and qa["evidence_recall"] == 1.0
    assert 0 < qa["char_f1"] < 1 and qa["rouge_l"] > 0
    assert cooking["pipeline_abstained"] and cooking["abstained"] and cooking["prompt"] is None
    summary = summarise(rows)
    metrics = summary["metrics"]
    assert metrics["mcq_accuracy"] == 1.0 and metrics["evidence_recall"] == 1.0
    assert metrics["citation_precision"] == pytest.approx((mcq["citation_precision"] + 0.0) / 2)
    assert metrics["abstention_precision"] == 1.0 and metrics["abstention_recall"] == 1.0
    assert metrics["abstention_recall_offtopic"] == 1.0 and "abstention_recall_hidden_gold" not in metrics
    assert metrics["false_refusal_rate"] == 0.0 and metrics["false_refusal_rate_gold_retrieved"] == 0.0
    assert summary["counts"] == {"n": 3, "answerable": 2, "unanswerable": 1, "mcq": 1, "answered": 2,
                                 "with_precision": 2, "with_gold": 1}
    assert qa["pasted"] is False and qa["copied_share"] == 0.0 and metrics["pasted_rate"] == 0.0  # no 12-char run
    assert summarise([mcq, dict(qa, pasted=True)])["metrics"]["pasted_rate"] == 0.5
    assert summarise([dict(mcq, pasted=None, copied_share=None)])["metrics"]["pasted_rate"] is None  # older rows
    lines = (tmp_path / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["m1", "q1", "u1"]


def test_a_reply_of_markers_alone_counts_as_a_refusal_and_keeps_what_was_said(legal_cfg, slice_retriever,
                                                                               tmp_path: Path) -> None:
    pipeline = _pipeline(legal_cfg, slice_retriever, tmp_path, "[1] [2] [3] [4] [5]")
    row, = run_items(pipeline, [QA], retrieval=True, rows_path=tmp_path / "rows.jsonl")
    assert row["pipeline_abstained"] and row["generated"] == "[1] [2] [3] [4] [5]"
    assert row["prompt"][-1]["role"] == "user" and row["contexts"] == []  # what the model was asked; not judged
    metrics = summarise([row])["metrics"]
    assert metrics["false_refusal_rate"] == 1.0 and metrics["citation_coverage"] is None
    assert QA.gold_ids[0] in {hit["doc_id"] for hit in row["hits"]}  # the evidence held the answer: a lost one
    assert metrics["false_refusal_rate_gold_retrieved"] == 1.0
    missed = dict(row, hits=[hit for hit in row["hits"] if hit["doc_id"] not in QA.gold_ids])
    assert summarise([missed])["metrics"]["false_refusal_rate_gold_retrieved"] == 0.0  # retrieval had missed


def test_hidden_gold_is_never_retrieved(legal_cfg, slice_retriever, tmp_path: Path) -> None:
    pipeline = _pipeline(legal_cfg, slice_retriever, tmp_path, "无法回答。", "无法回答。")
    (row,) = run_items(pipeline, [HIDDEN], retrieval=True, rows_path=tmp_path / "rows.jsonl")
    assert MURDER.doc_id not in {h["doc_id"] for h in row["hits"]}
    assert row["abstained"]  # the pipeline's threshold or the model's own refusal


def test_a_stopped_run_resumes_from_the_reply_cache(legal_cfg, slice_retriever, tmp_path: Path) -> None:
    first = _pipeline(legal_cfg, slice_retriever, tmp_path, "抢劫的处三年以上十年以下有期徒刑[1]。答案是B")
    run_items(first, [MCQ], retrieval=True, rows_path=tmp_path / "rows.jsonl")
    again = _pipeline(legal_cfg, slice_retriever, tmp_path)  # no scripted replies left: all must come from the cache
    (row,) = run_items(again, [MCQ], retrieval=True, rows_path=tmp_path / "rows.jsonl")
    assert row["picked"] == "B" and again.generator.hits == 1 and again.generator.misses == 0


def test_closed_book_sends_the_bare_question(legal_cfg, slice_retriever, tmp_path: Path) -> None:
    pipeline = _pipeline(legal_cfg, slice_retriever, tmp_path, "B")
    (row,) = run_items(pipeline, [MCQ], retrieval=False, rows_path=tmp_path / "rows.jsonl")
    assert row["prompt"] == [{"role": "user", "content": MCQ.question}] and row["hits"] == []
    assert row["mcq_correct"] == 1.0 and "evidence_recall" not in row


def test_items_of_declared_sets_and_the_unanswerable_set(legal_cfg) -> None:
    from core.errors import ConfigError

    mcq, skipped = set_items(legal_cfg, "disc_law_eval_mcq", frozenset({"test"}), limit=3)
    assert len(mcq) == 3 and skipped == 0 and all(i.kind == "mcq" and "\nA. " in i.question and i.options for i in mcq)
    qa, _ = set_items(legal_cfg, "lawbench_consultation", frozenset({"test"}), limit=2)
    assert all(i.kind == "reference" and i.reference for i in qa)
    with pytest.raises(ConfigError, match="classification set"):
        set_items(legal_cfg, "cail2018_charges", frozenset({"test"}))


def test_broken_records_of_a_file_are_skipped_and_counted(legal_cfg, tmp_path: Path) -> None:
    from core.errors import ConfigError

    rows = [{"id": "a", "question": "盗窃罪怎么判？", "answer": "处三年以下有期徒刑。"},
            {"id": "b", "question": "没有答案的问题"}, {"id": "c", "answer": "没有问题的答案"}]
    file = tmp_path / "set.jsonl"
    file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    items, skipped = set_items(legal_cfg, "lawbench_consultation", frozenset({"train", "dev", "test"}), file=file)
    assert [i.item_id for i in items] == ["a"] and skipped == 2
    file.write_text(json.dumps({"id": "x", "q": "wrong field"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no record with a question \\(question\\) and an answer \\(answer\\)"):
        set_items(legal_cfg, "lawbench_consultation", frozenset({"train", "dev", "test"}), file=file)
    items = unanswerable_items(legal_cfg, frozenset({"test"}), per_source=2)
    sources = {i.source.split(":")[0] for i in items}
    assert sources == {"other", "offtopic", "hidden-gold"} and not any(i.answerable for i in items)
    assert all(i.hidden_ids for i in items if i.source.startswith("hidden-gold"))


def test_dossier_eval_answers_end_to_end(tiny_lm_dir, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The CLI over a real index with the tiny real transformers model (its replies are gibberish: the point is
    the run, its files and its resume, not the scores)."""
    from slice_index import build_slice_index, minilm_cfg

    from cli import main
    from domains import load_domain

    index = build_slice_index(minilm_cfg(load_domain("legal")), legal_slice(range(232, 277)), tmp_path / "idx")
    args = ["eval", "answers", "--domain", "legal", "--evalset", "disc_law_eval_mcq", "--limit", "2",
            "--model", str(tiny_lm_dir), "--embedder", "all-minilm-l6-v2", "--index-dir", str(index),
            "--out", str(tmp_path / "runs"), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["domain"] == "legal" and summary["n"] == 2 and summary["retrieval"] is True
    assert summary["counts"]["mcq"] == 2 and "mcq_accuracy" in summary["metrics"]
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert {"rows.jsonl", "summary.json", "config.json", "report.md"} <= {p.name for p in run_dir.iterdir()}
    assert (tmp_path / "runs" / "replies.jsonl").is_file()
    assert main([*args[:-1]]) == 0  # again, as a table: every reply now comes from the cache
    assert "0 generated" in capsys.readouterr().err
    assert main(["eval", "compare", str(run_dir), str(run_dir)]) == 0
    assert "mcq_accuracy" in capsys.readouterr().out
    assert main([*args[:4], "--evalset", "cail2018_charges"]) == 2  # not an answer set: a clear error
    assert "classification set" in capsys.readouterr().err
    assert main([*args[:-1], "--judge", "local", "--judge-timeout", "0"]) == 2
    assert "--judge-timeout must be a positive number" in capsys.readouterr().err


def test_a_dialogue_item_carries_its_earlier_turns_into_the_prompt(legal_cfg, slice_retriever, tmp_path: Path) -> None:
    from eval.answer_items import dialogue_history

    chat = [{"role": "user", "content": "故意杀人罪判几年？"},
            {"role": "assistant", "content": "处死刑、无期徒刑[1]。"},
            {"role": "user", "content": "情节较轻的呢？"}]
    history = dialogue_history(chat)
    assert history == (("user", "故意杀人罪判几年？"), ("assistant", "处死刑、无期徒刑[1]。"))
    item = AnswerItem("d1", "情节较轻的呢？", "reference", "处三年以上十年以下有期徒刑。", history=history)
    pipeline = _pipeline(legal_cfg, slice_retriever, tmp_path, "B")  # the closed book's reply
    (row,) = run_items(pipeline, [item], retrieval=False, rows_path=tmp_path / "rows.jsonl")
    assert [m["role"] for m in row["prompt"]] == ["user", "assistant", "user"]
    assert row["prompt"][0]["content"] == "故意杀人罪判几年？" and row["prompt"][-1]["content"] == "情节较轻的呢？"


def test_the_embedding_precision_can_be_pinned_for_a_run_resumed_elsewhere() -> None:
    """bf16 and fp32 query vectors rank near-ties differently, so a run kept in the repository pins one."""
    import argparse

    from cli.eval_answers_cmd import _config

    args = argparse.Namespace(domain="finance", embedder=None, model="", embedding_precision="fp32",
                              focus_sentences=None)
    assert _config(args).embedding.precision == "fp32"
    assert _config(argparse.Namespace(domain="finance", embedder=None, model="", embedding_precision=None,
                                      focus_sentences=None)).embedding.precision == "auto"


def test_a_focused_run_says_so_in_its_config_and_its_directory() -> None:
    """A run whose evidence is focused must not resume, or be mistaken for, the whole-passage run."""
    import argparse

    from cli.eval_answers_cmd import _config

    args = argparse.Namespace(domain="finance", embedder=None, model="", embedding_precision=None, focus_sentences=3)
    assert _config(args).generation.focus_sentences == 3
    whole = RunSpec("finance", "fincuge_finqa", ("dev",), 80, "base", "llama-cpp:q", True, 5)
    focused = RunSpec("finance", "fincuge_finqa", ("dev",), 80, "base", "llama-cpp:q", True, 5, focus_sentences=3)
    assert whole.tag == "finance-fincuge_finqa-base-rag-u5-dev"
    assert focused.tag == "finance-fincuge_finqa-base-rag-focus3-u5-dev"
