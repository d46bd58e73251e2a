"""Statute and sentence chunking on real articles: sizes, boundaries, offsets."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from ingest_helpers import criminal_law_records

from core.records import Document
from domains.config import ChunkingConfig
from ingest.chunking import chunk_document, chunk_spans
from ingest.segment import pack, sentence_spans
from ingest.statute_chunker import clause_spans

ARTICLES = {r["article_no"]: r for r in criminal_law_records()}
STATUTE = ChunkingConfig(strategy="statute", max_chars=512, overlap_chars=0)
ENDS = "。！？；：\n"


def test_a_short_article_is_one_chunk() -> None:
    text = ARTICLES["第二百六十四条"]["text"]  # theft: one article, under 512 characters
    assert chunk_spans(text, STATUTE) == [(0, len(text))]


@pytest.mark.parametrize("article_no", ["第一百九十八条", "第三百四十七条", "第四百五十二条"])
def test_a_long_article_splits_at_its_clauses(article_no: str) -> None:
    text = ARTICLES[article_no]["text"]
    assert len(text) > STATUTE.max_chars
    spans = chunk_spans(text, STATUTE)
    assert len(spans) >= 2
    assert all(end - start <= STATUTE.max_chars for start, end in spans)
    for start, end in spans:  # every chunk ends at the end of a clause or sentence, never mid-sentence
        assert end == len(text) or text[end - 1] in ENDS or text[end] == "\n", text[start:end][-20:]
    covered = "".join(text[s:e] for s, e in spans)
    assert covered.replace("\n", "") == text.replace("\n", "")  # nothing lost, nothing repeated (no overlap)


def test_insurance_fraud_article_keeps_its_item_list_with_the_lead_in() -> None:
    text = ARTICLES["第一百九十八条"]["text"]
    first, *rest = chunk_spans(text, STATUTE)
    assert "（一）" in text[first[0] : first[1]]  # items follow the lead-in while they fit
    assert all(text[s : e].strip() for s, e in rest)


def test_inline_items_are_clauses() -> None:
    text = "有下列情形之一的：（一）甲；（二）乙。\n第二款。"
    pieces = [text[s:e] for s, e in clause_spans(text)]
    assert pieces == ["有下列情形之一的：", "（一）甲；", "（二）乙。\n", "第二款。"]


def test_an_over_long_sentence_is_cut_at_a_comma() -> None:
    text = "，".join(["甲乙丙丁戊己庚辛"] * 12) + "。"  # one sentence of 108 characters
    spans = chunk_spans(text, ChunkingConfig(strategy="statute", max_chars=30, overlap_chars=0))
    assert all(e - s <= 30 for s, e in spans)
    assert all(text[e - 1] in "，。" for s, e in spans)


def test_sentence_strategy_packs_and_overlaps_whole_sentences() -> None:
    text = ARTICLES["第三百四十七条"]["text"]
    cfg = ChunkingConfig(strategy="sentence", max_chars=120, overlap_chars=40)
    spans = chunk_spans(text, cfg)
    assert all(e - s <= 120 for s, e in spans)
    sentence_starts = {s for s, _ in sentence_spans(text)}
    for (_, prev_end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start in sentence_starts or text[start - 1] in "，、"  # whole sentences (or a cut long one)
        assert prev_end - start <= 40  # overlap within budget
    assert spans[-1][1] == len(text)


def test_pack_always_progresses_with_overlap_larger_than_units() -> None:
    text = "a。" * 50
    units = sentence_spans(text)
    spans = pack(text, units, max_chars=16, overlap_chars=15)
    assert spans[-1][1] == len(text)
    assert all(b[0] > a[0] for a, b in zip(spans, spans[1:], strict=False))


def test_chunks_carry_ids_offsets_title_and_metadata() -> None:
    record = ARTICLES["第一百九十八条"]
    meta = MappingProxyType({"law_name": record["law_name"], "status": record["status"]})
    doc = Document(record["doc_id"], record["text"], "刑法 第一百九十八条", "x", meta)
    chunks = chunk_document(doc, STATUTE)
    assert [c.chunk_id for c in chunks] == [f"{doc.doc_id}#c{i}" for i in range(len(chunks))]
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.start : chunk.end]
        assert chunk.title == doc.title and chunk.metadata["status"] == record["status"]
