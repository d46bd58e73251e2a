"""The citation card's HTML: the span in <mark> at the right offsets, its passage around it, everything escaped."""

from __future__ import annotations

import re

from ui.citation_html import (
    badges,
    card_html,
    citation_card_html,
    citation_label,
    highlighted_passage,
    span_in_passage,
)

ARTICLE = "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑；情节较轻的，处三年以上十年以下有期徒刑。"
HIT = {"chunk_id": "刑法#232#0", "doc_id": "刑法#232", "title": "中华人民共和国刑法 第二百三十二条", "text": ARTICLE,
       "start": 100, "end": 100 + len(ARTICLE),
       "metadata": {"law_name": "中华人民共和国刑法", "article_no": "第二百三十二条", "status": "现行有效",
                    "version_date": "2020-12-26"}}
LIGHTER = "情节较轻的，处三年以上十年以下有期徒刑。"


def marked(html: str) -> list[str]:
    return re.findall(r"<mark>(.*?)</mark>", html)


def test_span_offsets_are_document_offsets_mapped_into_the_passage() -> None:
    start = 100 + ARTICLE.index(LIGHTER)
    assert span_in_passage(ARTICLE, 100, start, start + len(LIGHTER), LIGHTER) == (ARTICLE.index(LIGHTER),
                                                                                    len(ARTICLE))


def test_span_falls_back_to_the_quote_when_offsets_do_not_fit() -> None:
    assert span_in_passage(ARTICLE, 100, 5, 9, LIGHTER) == (ARTICLE.index(LIGHTER), len(ARTICLE))
    assert span_in_passage(ARTICLE, 100, 5, 9, "不在条文里") is None


def test_the_span_is_marked_and_its_surroundings_kept() -> None:
    span = (ARTICLE.index(LIGHTER), len(ARTICLE))
    html = highlighted_passage(ARTICLE, span)
    assert marked(html) == [LIGHTER]
    assert html.startswith("故意杀人的") and "…" not in html


def test_a_long_passage_is_cut_around_the_span_with_ellipses() -> None:
    text = "甲" * 1000 + "乙乙乙" + "丙" * 1000
    html = highlighted_passage(text, (1000, 1003), context_chars=10)
    assert html == "…" + "甲" * 10 + "<mark>乙乙乙</mark>" + "丙" * 10 + "…"


def test_text_from_the_corpus_or_the_model_is_escaped() -> None:
    text = 'a <script>alert("x")</script> & <b>bold</b>'
    html = highlighted_passage(text, (2, 30))
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp;" in html
    hit = HIT | {"text": text, "title": "<img src=x onerror=alert(1)>", "metadata": {"status": "<i>x</i>"}}
    card = card_html(hit, None, "[1]")
    assert "<img" not in card and "<i>" not in card and "&lt;i&gt;" in card


def test_badges_say_article_status_in_words_version_and_own_documents() -> None:
    expected = [("第二百三十二条", ""), ("现行有效 · in force", "ok"), ("version 2020-12-26", "")]
    assert badges(HIT["metadata"]) == expected
    assert badges({"status": "已废止"})[0] == ("已废止 · repealed", "old")
    assert badges({"collection": True, "file_id": "f1"}) == [("your document", "")]


def test_citation_card_finds_its_hit_and_marks_the_quote() -> None:
    start = 100 + ARTICLE.index(LIGHTER)
    citation = {"marker": 2, "chunk_id": HIT["chunk_id"], "doc_id": HIT["doc_id"], "title": HIT["title"],
                "start": start, "end": start + len(LIGHTER), "quote": LIGHTER}
    unsupported = [{"sentence": "处十年。", "marker": 2, "reason": "the penalty is not in the passage"},
                   {"sentence": "other", "marker": 1, "reason": "not this card's"}]
    card = citation_card_html(citation, [HIT], unsupported)
    assert marked(card) == [LIGHTER]
    assert "[2] 中华人民共和国刑法" in card and "现行有效 · in force" in card and "version 2020-12-26" in card
    assert "the penalty is not in the passage" in card and "not this card" not in card
    assert citation_label(citation, [HIT]) == "[2] 中华人民共和国刑法 第二百三十二条"


def test_a_citation_without_its_hit_still_shows_its_quote_marked() -> None:
    citation = {"marker": 1, "chunk_id": "gone", "doc_id": "d", "title": "", "start": 0, "end": 3, "quote": "abc"}
    assert marked(citation_card_html(citation, [])) == ["abc"]
    assert citation_label(citation, []) == "[1] d"
