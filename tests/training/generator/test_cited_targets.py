"""Cited targets: a reference answer keeps only the sentences a passage supports (the product's own check), each
cited to that passage, and the product's citation check then finds nothing to object to."""

from __future__ import annotations

from core.records import Chunk, Hit
from rag.citations import cite
from rag.prompting import select_evidence
from training.generator.cited_targets import (
    cited_basis,
    cited_reference,
    reference_sentences,
    source_heading,
    without_attribution,
)

DRUNK = Chunk("c1", "刑法#133-1", "在道路上驾驶机动车，醉酒驾驶机动车的，处拘役，并处罚金。", 0, 27,
              title="中华人民共和国刑法 第一百三十三条之一")
LIMITATION = Chunk("c2", "民法典#188", "向人民法院请求保护民事权利的诉讼时效期间为三年。法律另有规定的，依照其规定。",
                   0, 38, title="中华人民共和国民法典 第一百八十八条")


def _evidence():
    return select_evidence([Hit(DRUNK, 0.9, "dense"), Hit(LIMITATION, 0.8, "dense")], 2400)


def test_each_supported_sentence_is_cited_to_its_own_passage() -> None:
    answer = "回答:醉酒驾驶机动车的，处拘役，并处罚金。请求保护民事权利的诉讼时效期间为三年。"
    target = cited_reference(answer.removeprefix("回答:"), _evidence())
    assert target.text == "醉酒驾驶机动车的，处拘役，并处罚金[1]。请求保护民事权利的诉讼时效期间为三年[2]。"
    assert (target.kept, target.dropped) == (2, 0)
    report = cite(target.text, _evidence())
    assert report.precision == 1.0 and report.coverage == 1.0 and not report.unsupported


def test_an_invented_penalty_and_an_unrelated_sentence_are_left_out() -> None:
    answer = ("醉酒驾驶机动车的，处五年以下有期徒刑。"  # the passage says 拘役: a wrong penalty is not supported
              "公司安排加班的，应当支付加班费。"  # nothing in the evidence
              "诉讼时效期间为三年。"
              "您还有别的问题吗？")
    target = cited_reference(answer, _evidence())
    assert target.text == "诉讼时效期间为三年[2]。"
    assert (target.kept, target.dropped) == (1, 2)  # the question back to the asker is neither


def test_a_reference_no_passage_supports_gives_no_target() -> None:
    target = cited_reference("公司安排加班的，应当按照劳动法支付加班费。", _evidence())
    assert target.text == "" and target.kept == 0 and target.dropped == 1


def test_the_target_is_cut_at_the_character_budget_on_a_sentence_boundary() -> None:
    answer = "醉酒驾驶机动车的，处拘役，并处罚金。请求保护民事权利的诉讼时效期间为三年。"
    assert cited_reference(answer, _evidence(), max_chars=20).text == "醉酒驾驶机动车的，处拘役，并处罚金[1]。"


def test_html_paragraphs_and_emphasis_are_cleaned_before_splitting() -> None:
    assert reference_sentences("<p>**诉讼时效**期间为三年。</p><p>法律另有规定的除外</p>") == [
        "诉讼时效期间为三年。", "法律另有规定的除外"]


def test_a_reference_that_is_one_short_phrase_is_the_answer() -> None:
    assert reference_sentences("三年") == ["三年"]
    assert cited_reference("三年", _evidence()).text == "三年[2]。"
    assert reference_sentences("好。行。") == []  # short pieces of a longer reply are not


def test_a_leading_attribution_is_cut_the_marker_names_the_source() -> None:
    answer = "根据《中华人民共和国民法典》第一百八十八条的规定，向人民法院请求保护民事权利的诉讼时效期间为三年。"
    assert cited_reference(answer, _evidence()).text == "向人民法院请求保护民事权利的诉讼时效期间为三年[2]。"
    assert without_attribution("依照《刑法》第一百三十三条之一规定：醉酒驾驶的，处拘役。") == "醉酒驾驶的，处拘役。"
    assert without_attribution("《民法典》第188条。") == "《民法典》第188条。"  # nothing left to say without it


def test_in_clause_style_the_target_quotes_the_clause_each_sentence_rests_on() -> None:
    answer = "请求保护民事权利的，时效是三年。时效期间为三年。"
    target = cited_reference(answer, _evidence(), style="clauses")
    assert target.text == "向人民法院请求保护民事权利的诉讼时效期间为三年[2]。"  # both rest on it: quoted once
    assert cite(target.text, _evidence()).precision == 1.0


def test_the_legal_basis_is_quoted_from_its_passage_under_the_passage_heading() -> None:
    """The basis names the article as the reference wrote it; the target takes heading and wording from the
    passage, so a number the model writes there is one the evidence gives."""
    basis = ("《中华人民共和国民法典》第一百八十八条向人民法院请求保护民事权利的诉讼时效期间为三年；"
             "法律另有规定的，依照其规定。《公司法》第十条公司应当依法纳税。")
    target = cited_basis(basis, _evidence(), "法律依据：")
    assert target.text == ("法律依据：《中华人民共和国民法典》第一百八十八条："
                           "向人民法院请求保护民事权利的诉讼时效期间为三年[2]。法律另有规定的，依照其规定[2]。")
    assert (target.kept, target.dropped) == (2, 1)  # the article the evidence lacks is left out
    report = cite(target.text, _evidence())
    assert report.precision == 1.0 and report.coverage == 1.0
    assert cited_basis("公司应当依法纳税。", _evidence(), "法律依据：").text == ""


def test_a_passage_heading_reads_as_a_citation() -> None:
    assert source_heading("中华人民共和国刑法 第一百三十三条之一") == "《中华人民共和国刑法》第一百三十三条之一"
    assert source_heading("问答 12") == "问答 12"  # not a law and article: as it is
