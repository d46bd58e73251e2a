"""A sentence that copies the user's question is dropped from the served answer unless a cited passage supports it;
an answer that only restated the question is an abstention."""

from __future__ import annotations

from dataclasses import replace

from fakes import ScriptedGenerator, fixed_retriever

from core.records import Chunk, Hit
from domains import load_domain
from rag.abstention import ECHO_ONLY_REASON
from rag.citations import cite
from rag.pipeline import RagPipeline
from rag.prompting import select_evidence
from rag.question_echo import strip_question_echoes

DRUNK = Chunk("刑法#133-1", "刑法#133-1", "在道路上驾驶机动车，醉酒驾驶机动车的，处拘役，并处罚金。", 0, 27,
              title="中华人民共和国刑法 第一百三十三条之一")
LIMITATION = Chunk("民法典#188", "民法典#188", "向人民法院请求保护民事权利的诉讼时效期间为三年。", 0, 23,
                   title="中华人民共和国民法典 第一百八十八条")
HITS = [Hit(DRUNK, 0.9, "dense"), Hit(LIMITATION, 0.8, "dense")]
QUESTION = "朋友借钱一直不还，过了几年还能起诉吗？"


def _evidence():
    return select_evidence(HITS, 2400)


def test_a_copied_question_under_a_marker_is_dropped_and_the_answer_kept() -> None:
    generated = "朋友借钱一直不还，过了几年还能起诉吗？[2]诉讼时效期间为三年[2]。"
    served, echoes = strip_question_echoes(generated, QUESTION, _evidence())
    assert served == "诉讼时效期间为三年[2]。"
    assert echoes == ["朋友借钱一直不还，过了几年还能起诉吗？"]
    assert cite(generated, _evidence()).precision == 0.5 and cite(served, _evidence()).precision == 1.0


def test_a_heading_marker_stays_for_the_block_below_its_copied_sentence() -> None:
    generated = "[2] 朋友借钱一直不还，过了几年还能起诉吗？\n诉讼时效期间为三年。"
    served, echoes = strip_question_echoes(generated, QUESTION, _evidence())
    assert served == "[2]\n诉讼时效期间为三年。" and len(echoes) == 1
    report = cite(served, _evidence())
    assert report.precision == 1.0 and report.coverage == 1.0  # the block below is still cited by its heading


def test_a_heading_left_with_nothing_under_it_goes_too() -> None:
    generated = "[1] 朋友借钱一直不还，过了几年还能起诉吗？\n\n[2] 诉讼时效期间为三年。"
    served, _ = strip_question_echoes(generated, QUESTION, _evidence())
    assert served == "[2] 诉讼时效期间为三年。"


def test_a_supported_sentence_that_repeats_the_question_s_words_stays() -> None:
    question = "醉酒驾驶机动车的，处拘役吗？"
    generated = "醉酒驾驶机动车的，处拘役[1]。"  # the answer repeats the question and its passage supports it
    assert strip_question_echoes(generated, question, _evidence()) == (generated, [])


def test_short_pieces_and_new_content_are_not_echoes() -> None:
    generated = "还能起诉[2]。诉讼时效期间为三年，从知道权利受到损害之日起计算[2]。"
    served, echoes = strip_question_echoes(generated, QUESTION, _evidence())
    assert served == generated and echoes == []


def test_the_pipeline_serves_the_answer_without_the_echo_and_traces_it() -> None:
    legal = load_domain("legal")
    cfg = replace(legal, abstention=replace(legal.abstention, threshold=0.0))
    reply = "朋友借钱一直不还，过了几年还能起诉吗？[1]诉讼时效期间为三年[2]。"
    answer = RagPipeline(cfg, fixed_retriever(HITS), ScriptedGenerator(reply)).answer(QUESTION)
    assert answer.text == "诉讼时效期间为三年[2]。"
    citations = answer.trace["citations"]
    assert citations["question_echoes"] == ["朋友借钱一直不还，过了几年还能起诉吗？"]
    assert citations["precision"] == 1.0 and citations["precision_as_generated"] == 0.5
    off = replace(cfg, generation=replace(cfg.generation, strip_question_echoes=False))
    kept = RagPipeline(off, fixed_retriever(HITS), ScriptedGenerator(reply)).answer(QUESTION)
    assert kept.text == reply


def test_an_answer_that_only_restates_the_question_abstains() -> None:
    legal = load_domain("legal")
    cfg = replace(legal, abstention=replace(legal.abstention, threshold=0.0))
    reply = "[1] 朋友借钱一直不还，过了几年还能起诉吗？"
    answer = RagPipeline(cfg, fixed_retriever(HITS), ScriptedGenerator(reply)).answer(QUESTION)
    assert answer.abstained and answer.abstain_reason == ECHO_ONLY_REASON
    assert answer.trace["generated"] == reply


def test_a_stream_that_showed_the_echo_ends_with_the_abstention() -> None:
    legal = load_domain("legal")
    cfg = replace(legal, abstention=replace(legal.abstention, threshold=0.0))
    reply = "[1] 朋友借钱一直不还，过了几年还能起诉吗？"
    chunks = list(RagPipeline(cfg, fixed_retriever(HITS), ScriptedGenerator(reply)).stream(QUESTION))
    assert chunks[-1].answer.abstained
    assert "".join(c.delta for c in chunks) == reply + "\n\n" + cfg.prompts.abstain
