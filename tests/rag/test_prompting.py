from __future__ import annotations

from core.protocols import Message
from core.records import Chunk, Hit
from domains import load_domain
from rag.prompting import answer_messages, clean_rewrite, rewrite_messages, select_evidence


def hits(*lengths: int) -> list[Hit]:
    return [Hit(Chunk(f"c{i}", f"d{i}", "字" * n, 0, n, title=f"t{i}"), 1.0, "bm25") for i, n in enumerate(lengths)]


def test_evidence_is_numbered_and_kept_within_the_budget():
    ev = select_evidence(hits(100, 100, 500, 100), context_chars=340)
    assert [h.chunk.chunk_id for h in ev.hits] == ["c0", "c1", "c3"]  # the 500-char passage does not fit
    assert len(ev.context) <= 340
    assert ev.context.startswith("[1] t0\n") and "\n\n[3] t3\n" in ev.context
    assert ev.passage(3).chunk.chunk_id == "c3" and ev.passage(4) is None and ev.passage(0) is None


def test_first_passage_is_cut_rather_than_dropped():
    ev = select_evidence(hits(5000), context_chars=400)
    assert len(ev.hits) == 1 and len(ev.context) <= 400


def test_domain_templates_are_filled():
    cfg = load_domain("legal")
    ev = select_evidence(hits(10), 1000)
    history = [Message("user", "问一"), Message("assistant", "答一")]
    messages = answer_messages(cfg.prompts, ev, "问题二", history)
    assert messages[0] == Message("system", cfg.prompts.system)
    assert messages[1:3] == history
    assert "问题二" in messages[-1].content and ev.context in messages[-1].content
    rewrite = rewrite_messages(cfg.prompts, "那呢？", history)
    assert "user: 问一" in rewrite[-1].content and "那呢？" in rewrite[-1].content


def test_clean_rewrite_takes_the_first_line_or_falls_back():
    assert clean_rewrite('"盗窃罪怎么处罚？"\n解释', "q") == "盗窃罪怎么处罚？"
    assert clean_rewrite("\n  \n", "原问题") == "原问题"
