"""One company filing and a Civil Code article as the evidence of a prompt: the sample that paste detection
(tests/rag/test_paste.py) and the distillation's handling of pastes (tests/training/generator/test_self_distill.py)
both read."""

from __future__ import annotations

from core.records import Chunk, Hit
from rag.prompting import Evidence, select_evidence

FILING = ("本公司于2026年3月1日召开第三届董事会第十二次会议，审议通过了关于使用部分闲置募集资金进行现金管理的议案，"
          "同意公司使用不超过人民币五亿元的闲置募集资金购买安全性高、流动性好的保本型理财产品，期限不超过十二个月。")
FILING_TITLE = "嘉元科技 688388 公告"
LOAN = "借款人应当按照约定的期限返还借款。"
LOAN_TITLE = "中华人民共和国民法典 第六百七十五条"


def filing_evidence() -> Evidence:
    hits = [Hit(Chunk("f1", "公告#1", FILING, 0, len(FILING), title=FILING_TITLE), 0.9, "rrf"),
            Hit(Chunk("c2", "民法典#675", LOAN, 0, len(LOAN), title=LOAN_TITLE), 0.8, "rrf")]
    return select_evidence(hits, context_chars=10_000)
