"""Eval set loading: `where`, field mapping, `--file` of the same schema, and skipped / filtered counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConfigError
from domains import load_domain
from eval.evalsets import load_evalset, read_jsonl


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_declared_set_applies_where_and_maps_fields() -> None:
    cfg = load_domain("legal")
    es = load_evalset(cfg, "cail2018_lawbench_fact2article")
    assert len(es.records) == 400 and es.filtered == 331 and es.skipped == 0
    first = es.records[0]
    assert first.query.startswith("公诉机关指控")  # query_field = "fact"
    assert first.gold_ids == ("d2da5d066414#第二百六十四条",)
    assert first.answer == "盗窃"  # answer_field = "accusation", a list joined


def test_file_of_same_schema_counts_skipped_and_filtered(tmp_path: Path) -> None:
    cfg = load_domain("finance")
    rows = [
        {"id": "q1", "question": "甲公司并购事件的主体？", "gold_doc_ids": ["p1"], "generic_question": False},
        {"id": "q2", "question": "无金标", "gold_doc_ids": [], "generic_question": False},
        {"id": "q3", "question": "模板问题", "gold_doc_ids": ["p3"], "generic_question": True},
        {"id": "q4", "question": "乙公司减持？", "gold_doc_ids": ["p4", "p5"], "answer": "100万股",
         "generic_question": False},
    ]
    es = load_evalset(cfg, "fincuge_finqa", file=_write(tmp_path / "mine.jsonl", rows))
    assert [r.record_id for r in es.records] == ["q1", "q4"]
    assert es.skipped == 1 and es.filtered == 1
    assert es.records[1].gold_ids == ("p4", "p5") and es.records[1].answer == "100万股"
    assert load_evalset(cfg, "fincuge_finqa", file=tmp_path / "mine.jsonl", limit=1).records[0].record_id == "q1"


def test_split_filter_and_errors(tmp_path: Path) -> None:
    cfg = load_domain("medical")
    dev = load_evalset(cfg, "huatuo26m_test_qa", splits=frozenset({"dev"}), limit=50)
    assert len(dev.records) == 50 and all(r.split == "dev" for r in dev.records)
    with pytest.raises(ConfigError, match="evalset"):
        load_evalset(cfg, "no_such_set")
    with pytest.raises(ConfigError, match="not found"):
        load_evalset(cfg, "huatuo26m_test_qa", file=tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_evalset(cfg, "huatuo26m_test_qa", file=bad)


def test_an_expanded_pool_holds_every_article_of_the_gold_laws(tmp_path: Path) -> None:
    from eval.eval_index import expanded_pool_config

    legal = load_domain("legal")
    pool = expanded_pool_config(legal, "lawyer_llama_consult_article_retrieval", "law_id", tmp_path)
    rows = list(read_jsonl(pool.path(pool.corpus[0].path)))
    gold = {g for r in load_evalset(legal, "lawyer_llama_consult_article_retrieval").records for g in r.gold_ids}
    assert gold <= {r["doc_id"] for r in rows}  # every gold article, and its whole law besides
    assert len({r["law_id"] for r in rows}) == 1 and len(rows) > len(gold)
    assert pool.corpus[0].title_fields == legal.corpus[0].title_fields
    assert pool.path(pool.retrieval.user_dict).read_bytes() == legal.path(legal.retrieval.user_dict).read_bytes()


def test_an_expanded_pool_takes_its_vectors_from_the_domains_pack(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool's own root is its folder; the vectors of its chunks are in the domain's shipped pack (before, the
    pack was looked for under the pool folder and a legal consultation pool embedded 4,957 chunks: ~35 min)."""
    import rag.build_retrieval as build_retrieval
    from eval.eval_index import build_eval_index
    from retrieval.store import CURRENT
    from retrieval.vector_pack import PACK_DIR
    from tests.retrieval.retrieval_support import HashEmbedder

    monkeypatch.setattr(build_retrieval, "build_embedder", lambda cfg, **_: HashEmbedder())
    monkeypatch.setattr(build_retrieval, "build_document_embedder", lambda cfg, embedder: None)
    monkeypatch.setenv("DOSSIER_HOME", str(tmp_path / "home"))
    made, real_builder = [], build_retrieval.build_index_builder

    def recording_builder(cfg, **kwargs):  # noqa: ANN001, ANN202 - the real builder, what it made kept
        made.append(real_builder(cfg, **kwargs))
        return made[-1]

    monkeypatch.setattr(build_retrieval, "build_index_builder", recording_builder)
    legal = load_domain("legal")
    index = build_eval_index(legal, "lawyer_llama_consult_article_retrieval", tmp_path / "eval-index", "law_id")
    assert made[0].vectors.pack_dir == legal.root / PACK_DIR
    assert (index / CURRENT).is_file()
