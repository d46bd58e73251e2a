"""Markers on the wrong passage move to the given passage that holds the sentence; nothing else changes, and the
pipeline's trace shows both what the model wrote and what was served."""

from __future__ import annotations

from dataclasses import replace

from fakes import ScriptedGenerator, fixed_retriever

from core.records import Chunk, Hit
from domains import load_domain
from rag.citation_repair import repoint_markers
from rag.citations import cite
from rag.pipeline import RagPipeline
from rag.prompting import select_evidence

DRUNK = Chunk("刑法#133-1", "刑法#133-1", "在道路上驾驶机动车，醉酒驾驶机动车的，处拘役，并处罚金。", 0, 27,
              title="中华人民共和国刑法 第一百三十三条之一")
LIMITATION = Chunk("民法典#188", "民法典#188", "向人民法院请求保护民事权利的诉讼时效期间为三年。", 0, 23,
                   title="中华人民共和国民法典 第一百八十八条")
HITS = [Hit(DRUNK, 0.9, "dense"), Hit(LIMITATION, 0.8, "dense")]


def _evidence():
    return select_evidence(HITS, 2400)


def test_a_sentence_cited_by_position_moves_to_the_passage_it_quotes() -> None:
    generated = "醉酒驾驶机动车的，处拘役，并处罚金[1]。请求保护民事权利的诉讼时效期间为三年[1]。"
    served, moves = repoint_markers(generated, _evidence())
    assert served == "醉酒驾驶机动车的，处拘役，并处罚金[1]。请求保护民事权利的诉讼时效期间为三年[2]。"
    assert [(m.cited, m.moved_to) for m in moves] == [(1, 2)]
    assert cite(generated, _evidence()).precision == 0.5 and cite(served, _evidence()).precision == 1.0


def test_what_no_passage_holds_keeps_its_marker_and_stays_unsupported() -> None:
    generated = "醉酒驾驶的，处五年以下有期徒刑[1]。公司应当依法纳税[2]。时效为三年[2,1]。没有标注的句子。"
    served, moves = repoint_markers(generated, _evidence())
    assert served == generated and moves == []  # [2,1]: [2] holds it; [1] has nowhere better to go
    report = cite(served, _evidence())
    assert report.unsupported == 3 and report.uncited_sentences == ("没有标注的句子。",)


def test_a_block_heading_stays_and_a_sentence_of_its_block_gets_its_own_marker() -> None:
    generated = "[2] 中华人民共和国刑法 第一百三十三条之一\n醉酒驾驶机动车的，处拘役，并处罚金。"
    served, moves = repoint_markers(generated, _evidence())
    assert served == "[2] 中华人民共和国刑法 第一百三十三条之一\n醉酒驾驶机动车的，处拘役，并处罚金。[1]"
    assert [(m.cited, m.moved_to) for m in moves] == [(2, 1)]
    # the sentence is now right; the heading, passage 1's title under [2], is still a miscitation and counts as one
    assert cite(generated, _evidence()).precision == 0.0 and cite(served, _evidence()).precision == 0.5


def test_a_block_pasting_two_passages_under_one_heading_cites_each_sentence_where_it_was_copied() -> None:
    # the shape a base model writes over short (focused) passages: one heading, sentences of several passages
    generated = "[1] 醉酒驾驶机动车的，处拘役，并处罚金。向人民法院请求保护民事权利的诉讼时效期间为三年。\n" \
                "公司应当依法纳税。"
    served, moves = repoint_markers(generated, _evidence())
    assert served == "[1] 醉酒驾驶机动车的，处拘役，并处罚金。向人民法院请求保护民事权利的诉讼时效期间为三年。[2]\n" \
                     "公司应当依法纳税。"  # what no passage holds keeps the heading's marker and stays unsupported
    assert [(m.cited, m.moved_to) for m in moves] == [(1, 2)]
    report = cite(served, _evidence())
    assert report.unsupported == 1 and [c.marker for c in report.citations] == [1, 2]


def test_a_block_sentence_its_heading_supports_is_left_alone() -> None:
    generated = "[1] 醉酒驾驶机动车的，处拘役。\n在道路上驾驶机动车，醉酒驾驶机动车的，处拘役，并处罚金。"
    assert repoint_markers(generated, _evidence()) == (generated, [])


def test_the_pipeline_serves_the_moved_marker_and_traces_the_model_s_own() -> None:
    legal = load_domain("legal")
    cfg = replace(legal, abstention=replace(legal.abstention, threshold=0.0))
    reply = "诉讼时效期间为三年[1]。醉酒驾驶机动车的，处拘役[1]。"
    answer = RagPipeline(cfg, fixed_retriever(HITS), ScriptedGenerator(reply)).answer("诉讼时效多久？")
    assert answer.text == "诉讼时效期间为三年[2]。醉酒驾驶机动车的，处拘役[1]。"
    citations = answer.trace["citations"]
    assert citations["precision"] == 1.0 and citations["precision_as_generated"] == 0.5
    assert citations["repointed"] == [{"sentence": "诉讼时效期间为三年。", "cited": 1, "moved_to": 2}]
    off = replace(cfg, generation=replace(cfg.generation, repoint_markers=False))
    kept = RagPipeline(off, fixed_retriever(HITS), ScriptedGenerator(reply)).answer("诉讼时效多久？")
    assert kept.text == reply and kept.trace["citations"]["precision"] == 0.5


def test_an_invented_penalty_is_not_moved_onto_an_article_that_merely_shares_it() -> None:
    """The support check alone would accept "五年以下有期徒刑" on the injury article (15 % overlap, the penalty
    present): a move needs the sentence to be that passage's wording."""
    murder = Chunk("刑法#232", "刑法#232", "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑。", 0, 25,
                   title="中华人民共和国刑法 第二百三十二条")
    text = "故意伤害他人身体的，处三年以下有期徒刑、拘役或者管制。致人重伤的，处五年以下有期徒刑。"
    injury = Chunk("刑法#234", "刑法#234", text, 0, len(text), title="中华人民共和国刑法 第二百三十四条")
    evidence = select_evidence([Hit(murder, 0.9, "dense"), Hit(injury, 0.8, "dense")], 2400)
    generated = "故意杀人的，处五年以下有期徒刑[1]。"
    assert repoint_markers(generated, evidence) == (generated, [])
    assert cite(generated, evidence).precision == 0.0


def test_a_quote_that_opens_with_its_heading_moves_to_the_passage_it_names() -> None:
    """The legal adapters quote as "法律依据：《…》第…条：text[n]": the heading comes from the passage's title."""
    generated = "法律依据：《中华人民共和国民法典》第一百八十八条：向人民法院请求保护民事权利的诉讼时效期间为三年[1]。"
    served, moves = repoint_markers(generated, _evidence())
    assert served.endswith("三年[2]。") and [(m.cited, m.moved_to) for m in moves] == [(1, 2)]
    assert cite(served, _evidence()).precision == 1.0


def test_a_copy_the_overlap_rule_passes_under_the_wrong_number_still_moves() -> None:
    from test_citations import _divorce

    generated = "离婚后，子女由一方直接抚养的，另一方应当负担部分或者全部抚养费[1]。"
    served, moves = repoint_markers(generated, _divorce())
    assert served == generated.replace("[1]", "[2]") and [(m.cited, m.moved_to) for m in moves] == [(1, 2)]
