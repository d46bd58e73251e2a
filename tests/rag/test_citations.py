"""cite / verify on known generated strings: the deterministic half of the citation tests."""

from __future__ import annotations

from core.records import Chunk, Hit
from rag.citations import cite
from rag.prompting import select_evidence

THEFT = (
    "盗窃公私财物，数额较大的，或者多次盗窃、入户盗窃、携带凶器盗窃、扒窃的，"
    "处三年以下有期徒刑、拘役或者管制，并处或者单处罚金。"
)
MURDER = "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑；情节较轻的，处三年以上十年以下有期徒刑。"
ROBBERY = "抢劫公私财物的，处三年以上十年以下有期徒刑。"
LONG = "第一句讲的是总则的内容。" * 10 + ROBBERY + "最后一句讲的是附则的内容。" * 5


def evidence(*texts: str):
    hits = [
        Hit(Chunk(f"c{i}", f"doc{i}", t, 100 * i, 100 * i + len(t), title=f"刑法 第{i}条"), 1.0 / i, "rrf")
        for i, t in enumerate(texts, 1)
    ]
    return select_evidence(hits, context_chars=10_000)


def test_markers_become_citations_with_exact_quotes():
    ev = evidence(THEFT, MURDER)
    report = cite("盗窃数额较大的，处三年以下有期徒刑[1]。故意杀人的，处死刑【2】。", ev)
    assert [c.marker for c in report.citations] == [1, 2]
    first, second = report.citations
    assert (first.chunk_id, first.doc_id, first.title) == ("c1", "doc1", "刑法 第1条")
    assert (first.start, first.end, first.quote) == (100, 100 + len(THEFT), THEFT)
    assert second.quote == MURDER
    assert report.text.endswith("处死刑[2]。")  # 【2】 normalised to [2]
    assert report.removed == 0 and report.unsupported == 0 and report.precision == 1.0


def test_citations_to_passages_not_given_are_removed_and_counted():
    ev = evidence(THEFT)
    report = cite("盗窃数额较大的，处三年以下有期徒刑[1,3]。这是编造的条文[7]。", ev)
    assert "[7]" not in report.text and "[1,3]" not in report.text and "[1]" in report.text
    assert report.removed == 2
    assert [c.marker for c in report.citations] == [1]
    assert report.cited_pairs == 3 and report.precision == 1 / 3
    assert report.uncited_sentences == ("这是编造的条文。",)


def test_uncited_and_unsupported_sentences_are_flagged():
    ev = evidence(THEFT, MURDER)
    text = "盗窃罪处三年以下有期徒刑。[1] 天空是蓝色的，海水是咸的[2]。另外需要咨询律师。"
    report = cite(text, ev)
    assert report.uncited_sentences == ("另外需要咨询律师。",)
    assert report.unsupported == 1  # the sky sentence shares nothing with the murder article
    assert report.precision == 0.5
    assert report.trace()["precision"] == 0.5


def test_no_citation_means_no_precision():
    report = cite("我不知道。", evidence(THEFT))
    assert report.citations == () and report.precision is None and report.cited_pairs == 0


def test_a_long_passage_is_quoted_by_its_best_matching_sentence():
    ev = evidence(LONG)
    report = cite("抢劫公私财物的，处三年以上十年以下有期徒刑[1]。", ev)
    (c,) = report.citations
    assert c.quote == "抢劫公私财物的，处三年以上十年以下有期徒刑。"
    chunk = ev.hits[0].chunk
    assert chunk.text[c.start - chunk.start : c.end - chunk.start] == c.quote


def test_multi_number_markers_and_separators():
    ev = evidence(THEFT, MURDER)
    report = cite("盗窃和故意杀人均处有期徒刑[1、2]。", ev)
    assert [c.marker for c in report.citations] == [1, 2]
    assert "[1,2]" in report.text


def test_a_marker_opening_a_line_cites_the_block_it_heads():
    ev = evidence(THEFT, MURDER)
    answer = f"[1] 刑法 第1条\n{THEFT}\n\n[2] 刑法 第2条\n{MURDER}\n\n另外，本问题还涉及其他规定。"
    report = cite(answer, ev)
    assert [c.marker for c in report.citations] == [1, 2]
    assert report.removed == 0 and report.unsupported == 0
    # the title line is supported by the passage's title; the block's sentences by its text; the last line,
    # which no marker opens, is flagged as uncited
    assert report.uncited_sentences == ("另外，本问题还涉及其他规定。",)
    assert report.precision == 1.0


def test_an_opening_marker_cites_every_line_of_its_block():
    # a pasted article runs over several lines, each ending in "。": the block is all of them, up to a blank line
    ev = evidence(THEFT + "\n" + MURDER)
    report = cite(f"[1] 刑法 第1条\n{THEFT}\n{MURDER}\n\n另外，本问题还涉及其他规定。", ev)
    assert report.uncited_sentences == ("另外，本问题还涉及其他规定。",)
    assert report.cited_pairs == 3 and report.precision == 1.0  # the title line and both paragraphs


def test_an_opening_marker_does_not_reach_past_a_blank_line():
    ev = evidence(THEFT)
    report = cite("[1] 盗窃数额较大的，处三年以下有期徒刑。\n\n故意杀人的，处死刑。", ev)
    assert report.uncited_sentences == ("故意杀人的，处死刑。",)
    assert cite("盗窃数额较大的，处三年以下有期徒刑[1]。\n故意杀人的，处死刑。", ev).uncited_sentences == (
        "故意杀人的，处死刑。",)  # a marker at the end of a line opens nothing


# two articles of one law that share their words: 1076 (divorce by agreement) and 1085 (child support after divorce)
AGREEMENT = Chunk("民法典#1076", "民法典#1076",
                  "夫妻双方自愿离婚的，应当签订书面离婚协议，并亲自到婚姻登记机关申请离婚登记。"
                  "离婚协议应当载明双方自愿离婚的意思表示和对子女抚养、财产以及债务处理等事项协商一致的意见。", 0, 90,
                  title="中华人民共和国民法典 第一千零七十六条")
SUPPORT = Chunk("民法典#1085", "民法典#1085", "离婚后，子女由一方直接抚养的，另一方应当负担部分或者全部抚养费。"
                "负担费用的多少和期限的长短，由双方协议；协议不成的，由人民法院判决。", 0, 64,
                title="中华人民共和国民法典 第一千零八十五条")


def _divorce():
    return select_evidence([Hit(AGREEMENT, 0.9, "dense"), Hit(SUPPORT, 0.8, "dense")], 2400)


def test_a_copy_of_another_given_article_under_this_one_s_heading_is_unsupported():
    # a base-model reply (legal test run, 2026-12-02): 1085's sentence pasted under 1076's heading; the two share
    # enough words (离婚, 子女, 抚养, 双方) for the overlap rule alone to pass it
    heading, moved = "[1] 中华人民共和国民法典 第一千零七十六条", "[2] 中华人民共和国民法典 第一千零八十五条"
    pasted = f"{heading}\n离婚后，子女由一方直接抚养的，另一方应当负担部分或者全部抚养费。"
    report = cite(pasted, _divorce())
    assert report.precision == 0.0
    assert report.unsupported_sentences[0][1:] == (1, "word for word in passage [2], not in this one")
    assert cite(pasted.replace(heading, moved), _divorce()).precision == 1.0


def test_a_paraphrase_no_passage_holds_word_for_word_is_judged_as_before():
    # the rule needs another passage holding the sentence: a reworded claim keeps the overlap rule's verdict
    assert cite("离婚以后，不直接抚养孩子的一方要负担部分或者全部抚养费[2]。", _divorce()).precision == 1.0
    # and a sentence two given passages both hold word for word is supported by either
    twice = select_evidence([Hit(SUPPORT, 0.9, "dense"),
                             Hit(Chunk("c2", "d2", SUPPORT.text, 0, 64, title=SUPPORT.title), 0.8, "dense")], 2400)
    assert cite("离婚后，子女由一方直接抚养的，另一方应当负担部分或者全部抚养费[1,2]。", twice).precision == 1.0
