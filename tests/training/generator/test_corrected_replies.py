"""corrected_reply on hand-made replies over real Criminal Law wording: what the citation check faults is fixed
(a marker moved or dropped, a held sentence cited) or left out, the rest is kept byte for byte, and the result
passes the check whole."""

from __future__ import annotations

from core.records import Chunk, Hit
from rag.citations import cite
from rag.prompting import select_evidence
from training.generator.corrected_replies import corrected_reply

THEFT = ("盗窃公私财物，数额较大的，或者多次盗窃、入户盗窃、携带凶器盗窃、扒窃的，"
         "处三年以下有期徒刑、拘役或者管制，并处或者单处罚金。")
MURDER = "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑；情节较轻的，处三年以上十年以下有期徒刑。"
ROBBERY = "以暴力、胁迫或者其他方法抢劫公私财物的，处三年以上十年以下有期徒刑，并处罚金。"


def evidence(*texts: str):
    hits = [Hit(Chunk(f"c{i}", f"doc{i}", t, 0, len(t), title=f"中华人民共和国刑法 第{i}条"), 1.0 / i, "rrf")
            for i, t in enumerate(texts, 1)]
    return select_evidence(hits, context_chars=10_000)


def test_supported_reply_is_kept_as_it_is():
    ev = evidence(THEFT, MURDER)
    reply = "盗窃公私财物，数额较大的，处三年以下有期徒刑、拘役或者管制[1]。"
    assert corrected_reply(reply, ev) == reply


def test_invented_penalty_goes_and_the_supported_sentence_stays():
    ev = evidence(THEFT, MURDER)
    reply = "盗窃公私财物，数额较大的，处三年以下有期徒刑、拘役或者管制[1]。盗窃数额较大的，处五年以上有期徒刑[1]。"
    fixed = corrected_reply(reply, ev)
    assert fixed == "盗窃公私财物，数额较大的，处三年以下有期徒刑、拘役或者管制[1]。"
    assert cite(reply, ev).precision == 0.5 and cite(fixed, ev).precision == 1.0


def test_a_copied_sentence_under_the_wrong_number_is_moved():
    ev = evidence(THEFT, MURDER)
    fixed = corrected_reply("故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑[1]。", ev)
    assert fixed == "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑[2]。"


def test_a_held_uncited_sentence_gets_its_marker_and_an_unheld_one_goes():
    ev = evidence(THEFT, ROBBERY)
    reply = "抢劫公私财物的，处三年以上十年以下有期徒刑，并处罚金。建议您尽快咨询专业律师。"
    assert corrected_reply(reply, ev) == "抢劫公私财物的，处三年以上十年以下有期徒刑，并处罚金[2]。"


def test_pasted_blocks_keep_their_headings_and_lose_the_invented_line():
    ev = evidence(THEFT, MURDER)
    reply = (f"[1] 中华人民共和国刑法 第1条\n{THEFT}\n盗窃的，一律处十年以上有期徒刑。\n\n"
             f"[2] 中华人民共和国刑法 第2条\n{MURDER}")
    fixed = corrected_reply(reply, ev)
    assert fixed == f"[1] 中华人民共和国刑法 第1条\n{THEFT}\n\n[2] 中华人民共和国刑法 第2条\n{MURDER}"
    report = cite(fixed, ev)
    assert report.precision == 1.0 and not report.uncited_sentences


def test_nothing_checkable_left_is_no_correction():
    ev = evidence(THEFT)
    assert corrected_reply("故意杀人的，处死刑[1]。", ev) is None
    assert corrected_reply("您好，这个问题比较复杂。", ev) is None
