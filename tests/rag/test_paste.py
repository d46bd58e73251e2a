"""A paste told from an answer: the share of a reply copied word for word from its passages (titles included) and
the rule that calls it a paste. The pipeline's trace and epilogue are tested in test_pipeline.py, the chat app's
caption in tests/ui, an answer run's `pasted_rate` in tests/eval/test_answer_run.py."""

from __future__ import annotations

from filing_sample import FILING, FILING_TITLE, filing_evidence

from rag.paste import copied_fraction, is_pasted, paste_trace


def test_a_pasted_reply_is_told_from_an_answer() -> None:
    evidence = filing_evidence()
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
    evidence = filing_evidence()
    reply = f"[1] {FILING_TITLE}\n{FILING}"
    assert paste_trace(reply, evidence) == {"copied_share": 1.0, "pasted": True}
    half = FILING[:50] + ("。这一安排由董事会在年度预算内统筹考虑，具体额度和期限将视市场利率与项目进度"
                          "另行确定并及时披露[1]。")
    trace = paste_trace(half, evidence)
    assert 0.3 < trace["copied_share"] < 0.8 and trace["pasted"] is False
