"""The support check on hand-made cases: the two invented answers issue 10 quotes must fail, real paraphrases and
quotations must pass, and a repeated title supports nothing."""

from __future__ import annotations

import pytest

from core.records import Chunk, Hit
from rag.citations import cite
from rag.prompting import select_evidence
from rag.support import facts, judge, names_only_the_title, numeral_value

DRUNK_TITLE = "中华人民共和国刑法 第一百三十三条之一"
DRUNK = "在道路上驾驶机动车，有下列情形之一的，处拘役，并处罚金：（一）追逐竞驶，情节恶劣的；（二）醉酒驾驶机动车的。"
BRIBE_TITLE = "中华人民共和国刑法 第一百六十三条"
BRIBE = ("公司、企业或者其他单位的工作人员，利用职务上的便利，索取他人财物或者非法收受他人财物，为他人谋取利益，"
         "数额较大的，处三年以下有期徒刑或者拘役，并处罚金。")
THEFT_TITLE = "中华人民共和国刑法 第二百六十四条"
THEFT = ("盗窃公私财物，数额较大的，或者多次盗窃、入户盗窃、携带凶器盗窃、扒窃的，"
         "处三年以下有期徒刑、拘役或者管制，并处或者单处罚金。")

SHARES = "截至公告披露日，陈大魁持有公司股份的数量为35370.00万股，占公司股份总数的比例为39.05%。"
TRANSFER = "拟以17.406元/股的价格，向阿里网络转让379,179,681股股份，价格66亿元，占公司股份总数的12％。"


@pytest.mark.parametrize(("sentence", "title", "passage", "why"), [
    # an invented penalty under the right article (issue 10): 五年以下有期徒刑 is not in the article
    (f"{DRUNK_TITLE} 醉酒驾驶机动车的，处五年以下有期徒刑，并处罚金。", DRUNK_TITLE, DRUNK, "5年以下"),
    # invented law text under an unrelated article: only the repeated title overlapped before
    (f"{BRIBE_TITLE} 公司安排加班，加班费应当按照实际缴出资比例分配。", BRIBE_TITLE, BRIBE, "overlap"),
    ("盗窃数额较大的，处三年以上有期徒刑。", THEFT_TITLE, THEFT, "3年以上"),
    ("盗窃的，处死刑。", THEFT_TITLE, THEFT, "死刑"),
    ("依照第二百六十三条，盗窃公私财物的处三年以下有期徒刑。", THEFT_TITLE, THEFT, "第263条"),
    ("条文写明“盗窃公私财物的一律处有期徒刑”。", THEFT_TITLE, THEFT, "quoted wording"),
    # a short finance answer with the wrong amount under a real citation (issue 13): the unit is 万股 / 亿元
    ("陈大魁持有公司股份的数量为30000万股。", "", SHARES, "30000万股"),
    ("阿里网络以60亿元受让股份。", "", TRANSFER, "60亿元"),
    ("转让379,179,682股股份。", "", TRANSFER, "379179682股"),  # every digit, thousands separators read
])
def test_unsupported_sentences_fail_with_a_reason(sentence, title, passage, why) -> None:
    verdict = judge(sentence, title, passage)
    assert not verdict.supported and why in verdict.reason


@pytest.mark.parametrize(("sentence", "title", "passage"), [
    ("醉酒驾驶机动车的，处拘役，并处罚金。", DRUNK_TITLE, DRUNK),
    ("入户盗窃的，最高可处3年以下有期徒刑，也可以只判罚金。", THEFT_TITLE, THEFT),  # 3 = 三, 罚金 stated
    ("根据刑法第二百六十四条，扒窃的处三年以下有期徒刑、拘役或者管制。", THEFT_TITLE, THEFT),  # its own number
    ("条文写明“数额较大的，或者多次盗窃”。", THEFT_TITLE, THEFT),
    ("陈大魁持有公司股份35370万股。", "", SHARES),  # 35370.00 = 35370
    ("向阿里网络转让379179681股股份，价格66亿元。", "", TRANSFER),
    ("阿里网络出了66亿买下这些股份。", "", TRANSFER),  # the amount without its 元
])
def test_paraphrases_and_quotations_of_the_passage_pass(sentence, title, passage) -> None:
    assert judge(sentence, title, passage).supported


def test_a_line_that_only_names_the_article_is_a_heading() -> None:
    assert names_only_the_title(f"{THEFT_TITLE}", THEFT_TITLE)
    assert names_only_the_title("刑法 第二百六十四条", THEFT_TITLE)
    assert not names_only_the_title(f"{THEFT_TITLE} 盗窃的处拘役", THEFT_TITLE)


def test_numerals_and_facts() -> None:
    assert [numeral_value(n) for n in ("3", "十", "十五", "二十", "一百零五", "两", "三千")] == \
        [3, 10, 15, 20, 105, 2, 3000]
    assert facts("处三年以上十年以下有期徒刑") == {"3年", "3年以上", "10年", "10年以下", "有期徒刑"}
    assert facts("第一百三十三条之一") == {"第133条之一"}
    assert facts("回购1,636.8988万股，成交总金额6973.88万元，1.2亿美元") == {
        "1636.8988万股", "1636.8988万", "6973.88万元", "6973.88万", "1.2亿美元", "1.2亿"}


def test_cite_lists_unsupported_sentences_with_reasons() -> None:
    hits = [Hit(Chunk("c1", "d1", DRUNK, 0, len(DRUNK), title=DRUNK_TITLE), 0.9, "zscore")]
    report = cite(f"[1] {DRUNK_TITLE}\n醉酒驾驶机动车的，处五年以下有期徒刑，并处罚金。", select_evidence(hits, 2400))
    assert report.cited_pairs == 1 and report.unsupported == 1 and report.precision == 0.0  # the heading is no claim
    (row,) = report.trace()["unsupported_sentences"]
    assert row["marker"] == 1 and "5年以下" in row["reason"] and "五年以下" in row["sentence"]


def test_unsupported_sentences_are_marked_in_the_served_answer() -> None:
    from core.records import Answer
    from rag.presenting import UNSUPPORTED_HEADING, answer_epilogue, answer_json

    hits = [Hit(Chunk("c1", "d1", DRUNK, 0, len(DRUNK), title=DRUNK_TITLE), 0.9, "zscore")]
    report = cite("醉酒驾驶机动车的，处五年以下有期徒刑[1]。", select_evidence(hits, 2400))
    answer = Answer("醉驾怎么处罚？", report.text, report.citations, tuple(hits), trace={"citations": report.trace()})
    (row,) = answer_json(answer, "legal")["unsupported"]
    assert row["marker"] == 1 and row["sentence"] == "醉酒驾驶机动车的，处五年以下有期徒刑。"
    assert UNSUPPORTED_HEADING in answer_epilogue(answer) and "五年以下有期徒刑。 [1]" in answer_epilogue(answer)
