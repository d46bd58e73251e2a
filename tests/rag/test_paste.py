"""A paste told from an answer: the share of a reply copied word for word from its passages, and the mark the
pipeline's trace, the plain-text epilogue, the chat app and an answer run carry for it."""

from __future__ import annotations

from core.records import Chunk, Hit
from rag.paste import copied_fraction, is_pasted, paste_trace
from rag.prompting import select_evidence

FILING = ("本公司于2026年3月1日召开第三届董事会第十二次会议，审议通过了关于使用部分闲置募集资金进行现金管理的议案，"
          "同意公司使用不超过人民币五亿元的闲置募集资金购买安全性高、流动性好的保本型理财产品，期限不超过十二个月。")
LOAN = "借款人应当按照约定的期限返还借款。"


def _evidence():
    hits = [Hit(Chunk("f1", "公告#1", FILING, 0, len(FILING), title="嘉元科技 688388 公告"), 0.9, "rrf"),
            Hit(Chunk("c2", "民法典#675", LOAN, 0, 17, title="中华人民共和国民法典 第六百七十五条"), 0.8, "rrf")]
    return select_evidence(hits, context_chars=10_000)


def test_a_pasted_reply_is_told_from_an_answer() -> None:
    evidence = _evidence()
    paste = FILING[:60] + "[1]" + FILING[60:] + "[1]"
    assert copied_fraction(paste, [FILING]) == 1.0
    assert is_pasted(paste, evidence) and paste_trace(paste, evidence) == {"copied_share": 1.0, "pasted": True}
    assert not is_pasted("688388[1]", evidence)  # short: an extraction, copied or not
    assert paste_trace("688388[1]", evidence)["pasted"] is False
    own_words = ("公司董事会已经同意用闲置的募集资金做现金管理[1]。额度最多五亿元，只能买保本而且流动性好的理财，"
                 "时间也不会超过一年，这样做是为了提高资金使用效率，同时保证募投项目正常进行，不影响主营业务的开展，"
                 "也不存在变相改变募集资金用途的情况。")
    assert copied_fraction(own_words, [FILING]) < 0.3 and not is_pasted(own_words, evidence)


def test_a_heading_copied_with_the_passage_counts_as_copied() -> None:
    """Small models paste "[1] <title>" and then the text: the title is the passage's too."""
    evidence = _evidence()
    reply = f"[1] 嘉元科技 688388 公告\n{FILING}"
    assert paste_trace(reply, evidence) == {"copied_share": 1.0, "pasted": True}
    half = FILING[:50] + ("。这一安排由董事会在年度预算内统筹考虑，具体额度和期限将视市场利率与项目进度"
                          "另行确定并及时披露[1]。")
    trace = paste_trace(half, evidence)
    assert 0.3 < trace["copied_share"] < 0.8 and trace["pasted"] is False
