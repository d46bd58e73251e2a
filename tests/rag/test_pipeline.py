"""RagPipeline stage by stage, with protocol fakes (a fixed-list retriever, a scripted generator) so the citation,
rewrite and abstention paths are deterministic. The real path is in test_server_e2e.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fakes import FunctionRetriever, ScriptedGenerator, fixed_retriever

from core.protocols import Message
from core.records import Chunk, Hit
from domains import load_domain
from rag.pipeline import RagPipeline
from rag.presenting import QUOTED_NOTE, answer_epilogue

ARTICLE = "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑；情节较轻的，处三年以上十年以下有期徒刑。"


def article_retriever(dense: float) -> FunctionRetriever:
    """One Criminal Law article, fused by RRF, whose dense score is `dense`."""
    chunk = Chunk("刑法#232", "刑法#232", ARTICLE, 0, len(ARTICLE), title="中华人民共和国刑法 第二百三十二条")
    return fixed_retriever([Hit(chunk, 0.03, "rrf", {"dense": dense, "rrf": 0.03})])


@pytest.fixture
def cfg():
    legal = load_domain("legal")
    return replace(legal, abstention=replace(legal.abstention, threshold=0.5, score="dense"))


def test_answer_cites_and_traces(cfg):
    gen = ScriptedGenerator("故意杀人的，处死刑或者无期徒刑[1]。情节较轻的另有规定[2]。")
    answer = RagPipeline(cfg, article_retriever(dense=0.8), gen).answer("故意杀人罪判几年？")
    assert not answer.abstained and answer.disclaimer == cfg.disclaimer
    assert [c.chunk_id for c in answer.citations] == ["刑法#232"]
    assert answer.citations[0].quote == ARTICLE
    assert "[2]" not in answer.text
    trace = answer.trace
    assert trace["citations"]["removed"] == 1 and trace["citations"]["precision"] == 0.5
    assert trace["evidence"] == ["刑法#232"] and trace["rewrite"] is None
    assert "[1] 中华人民共和国刑法 第二百三十二条" in gen.calls[0][-1].content


def test_weak_evidence_abstains_without_calling_the_generator(cfg):
    gen = ScriptedGenerator()
    answer = RagPipeline(cfg, article_retriever(dense=0.2), gen).answer("红烧肉怎么做？")
    assert answer.abstained and answer.text == cfg.prompts.abstain
    assert answer.hits and not answer.citations and not gen.calls
    assert "0.200" in answer.abstain_reason


@pytest.mark.parametrize("reply", ["现有法律条文库中没有找到足以回答该问题的依据。",
                                   "现有法律条文库中没有找到足以回答该问题的依据[1]"])
def test_a_generator_that_declines_is_an_abstention(cfg, reply):
    """The tuned adapters answer unanswerable evidence with the domain's refusal sentence: served as an abstention,
    nearest passages shown, the reply kept in the trace; in the stream too."""
    from rag.abstention import MODEL_REFUSAL_REASON

    answer = RagPipeline(cfg, article_retriever(dense=0.8), ScriptedGenerator(reply)).answer("加班费怎么算？")
    assert answer.abstained and answer.abstain_reason == MODEL_REFUSAL_REASON
    assert answer.text == cfg.prompts.abstain and answer.hits and not answer.citations
    assert answer.trace["generated"] == reply
    streamed = list(RagPipeline(cfg, article_retriever(dense=0.8), ScriptedGenerator(reply)).stream("加班费怎么算？"))
    assert streamed[-1].answer.abstained and streamed[-1].answer.abstain_reason == MODEL_REFUSAL_REASON


@pytest.mark.parametrize("reply", ["[1] [2] [3] [4] [5]", "[1]。\n\n【2】", ""])
def test_a_reply_of_markers_alone_is_an_abstention_with_the_evidence(cfg, reply):
    """The base 0.5B model answers about one finance question in five with its markers and nothing else: that is
    no answer, and serving it as one hid it from every metric (coverage counts sentences, and it has none)."""
    from rag.abstention import EMPTY_REPLY_REASON

    answer = RagPipeline(cfg, article_retriever(dense=0.8), ScriptedGenerator(reply)).answer("故意杀人罪判几年？")
    assert answer.abstained and answer.abstain_reason == EMPTY_REPLY_REASON
    assert answer.text == cfg.prompts.abstain and answer.hits and answer.trace["generated"] == reply
    pipeline = RagPipeline(cfg, article_retriever(dense=0.8), ScriptedGenerator(reply))
    streamed = list(pipeline.stream("故意杀人罪判几年？"))
    assert streamed[-1].answer.abstained and streamed[-1].answer.abstain_reason == EMPTY_REPLY_REASON


def test_a_stream_never_shows_the_markers_of_a_reply_it_abstains_on(cfg):
    """A client concatenates the deltas: a reply of markers alone is abstained on, and its "[1] [2]" (the "[2"
    arriving before its "]") must not have reached the client before the abstention."""
    pipeline = RagPipeline(cfg, article_retriever(dense=0.8), ScriptedGenerator("[1] [2]"))
    held = list(pipeline.stream("故意杀人罪判几年？"))
    assert "".join(c.delta for c in held) == cfg.prompts.abstain  # what was said instead, and only that
    assert held[-1].answer.abstained and "first_token" in held[-1].answer.trace["timings_ms"]


def test_a_stream_shows_a_leading_marker_with_the_text_after_it(cfg):
    reply = "[1] 故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑。"
    pipeline = RagPipeline(cfg, article_retriever(dense=0.8), ScriptedGenerator(reply))
    chunks = list(pipeline.stream("故意杀人罪判几年？"))
    assert "".join(c.delta for c in chunks) == reply and not chunks[-1].answer.abstained


def test_a_short_figure_under_a_marker_is_an_answer(cfg):
    answer = RagPipeline(cfg, article_retriever(dense=0.8), ScriptedGenerator("[1] 688388")).answer("股票代码是多少？")
    assert not answer.abstained


def test_a_reply_that_only_mentions_missing_evidence_is_an_answer(cfg):
    reply = ("故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑[1]。"
             "现有法律条文库中没有找到足以回答该问题的依据的部分另行咨询。")
    answer = RagPipeline(cfg, article_retriever(dense=0.8), ScriptedGenerator(reply)).answer("故意杀人罪判几年？")
    assert not answer.abstained and answer.citations


def test_follow_up_is_rewritten_before_retrieval(cfg):
    retriever = article_retriever(dense=0.8)
    gen = ScriptedGenerator("故意杀人罪情节较轻的怎么处罚？\n", "处三年以上十年以下有期徒刑[1]。")
    history = [Message("user", "故意杀人罪判几年？"), Message("assistant", "处死刑、无期徒刑[1]。")]
    answer = RagPipeline(cfg, retriever, gen).answer("那情节较轻的呢？", history)
    assert retriever.queries == ["故意杀人罪情节较轻的怎么处罚？"]
    assert answer.trace["rewrite"] == {"from": "那情节较轻的呢？", "to": "故意杀人罪情节较轻的怎么处罚？"}
    assert "那情节较轻的呢？" in gen.calls[0][-1].content  # the rewrite prompt saw the follow-up
    assert answer.question == "那情节较轻的呢？"


def test_stream_yields_deltas_then_the_same_answer(cfg):
    text = "故意杀人的，处死刑[1]。"
    chunks = list(RagPipeline(cfg, article_retriever(dense=0.8), ScriptedGenerator(text)).stream("故意杀人罪判几年？"))
    assert "".join(c.delta for c in chunks) == text
    final = chunks[-1].answer
    assert final is not None and final.text == text and final.citations
    evidence = chunks[0].evidence  # first, before any text: the passages the markers number
    assert evidence and not chunks[0].delta and all(not c.evidence for c in chunks[1:])
    assert evidence[final.citations[0].marker - 1].chunk.chunk_id == final.citations[0].chunk_id
    assert "first_token" in final.trace["timings_ms"]


def test_an_abstaining_stream_sends_no_evidence(cfg):
    """Below the threshold nothing is generated: the stream carries the refusal and the answer, no passages."""
    pipeline = RagPipeline(cfg, article_retriever(dense=0.2), ScriptedGenerator("不会用到"))
    chunks = list(pipeline.stream("红烧肉怎么做？"))
    assert chunks[-1].answer is not None and chunks[-1].answer.abstained
    assert not any(c.evidence for c in chunks) and chunks[0].delta == cfg.prompts.abstain


def test_a_reply_of_markers_alone_is_answered_by_quoting_the_passage_where_the_domain_says_so(cfg):
    quoting = replace(cfg, generation=replace(cfg.generation, quote_marker_replies=True))
    answer = RagPipeline(quoting, article_retriever(dense=0.8), ScriptedGenerator("[1]")).answer("情节较轻的判几年？")
    assert not answer.abstained and answer.text == "情节较轻的，处三年以上十年以下有期徒刑。[1]"
    assert answer.trace["citations"]["precision"] == 1.0 and answer.trace["quoted_for_reply"] == "[1]"
    assert QUOTED_NOTE in answer_epilogue(answer)  # a plain-text reader is told it is a quote
    streaming = RagPipeline(quoting, article_retriever(dense=0.8), ScriptedGenerator("[1]"))
    streamed = list(streaming.stream("情节较轻的判几年？"))
    assert "".join(c.delta for c in streamed) == answer.text  # held back as markers, then shown as the quote
    unknown = RagPipeline(quoting, article_retriever(dense=0.8), ScriptedGenerator("[7]")).answer("情节较轻的判几年？")
    assert unknown.abstained  # it names no passage that was given: nothing to quote
    off = RagPipeline(cfg, article_retriever(dense=0.8), ScriptedGenerator("[1]")).answer("情节较轻的判几年？")
    assert off.abstained and "quoted_for_reply" not in off.trace
    written = ScriptedGenerator("情节较轻的，处三年以上十年以下有期徒刑[1]。")  # the model's own answer: no note
    assert QUOTED_NOTE not in answer_epilogue(RagPipeline(quoting, article_retriever(dense=0.8), written)
                                              .answer("情节较轻的判几年？"))


DEBTS = ("夫妻双方共同签名或者夫妻一方事后追认等共同意思表示所负的债务，以及夫妻一方在婚姻关系存续期间以个人名义为"
         "家庭日常生活需要所负的债务，属于夫妻共同债务。夫妻一方在婚姻关系存续期间以个人名义超出家庭日常生活需要所负的"
         "债务，不属于夫妻共同债务。")


def test_a_pasted_article_is_marked_in_the_trace_and_told_to_a_plain_text_reader(cfg):
    """A paste passes the citation check (the passage holds it), so the trace and the epilogue must say it is one."""
    chunk = Chunk("民法典#1064", "民法典#1064", DEBTS, 0, len(DEBTS), title="中华人民共和国民法典 第一千零六十四条")
    retriever = fixed_retriever([Hit(chunk, 0.03, "rrf", {"dense": 0.8, "rrf": 0.03})])
    paste = f"[1] 中华人民共和国民法典 第一千零六十四条\n{DEBTS}"
    answer = RagPipeline(cfg, retriever, ScriptedGenerator(paste)).answer("借钱不还能起诉吗？")
    citations = answer.trace["citations"]
    assert citations["precision"] == 1.0 and citations["pasted"] is True and citations["copied_share"] == 1.0
    assert "原文摘录" in answer_epilogue(answer) and "100%" in answer_epilogue(answer)
    own = "丈夫一个人为了家里日常开销借的钱，一般算夫妻两个人共同的债务，两人都要还[1]。"
    answered = RagPipeline(cfg, retriever, ScriptedGenerator(own)).answer("丈夫借的钱妻子要还吗？")
    assert answered.trace["citations"]["pasted"] is False and "原文摘录" not in answer_epilogue(answered)
