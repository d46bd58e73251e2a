"""Answer metrics on hand-made cases: the option rule, refusals, abstention precision / recall, evidence recall."""

from __future__ import annotations

import pytest

from eval.answer_metrics import (
    abstention_recall_by_source,
    abstention_scores,
    choice_correct,
    evidence_recall,
    is_refusal,
    mean,
    parse_choice,
)

OPTIONS = ("A", "B", "C", "D")


@pytest.mark.parametrize(("reply", "picked"), [
    ("B", "B"), ("B.", "B"), ("（C）", "C"), ("AB", "AB"), ("A、C。", "AC"),
    ("答案是B", "B"), ("正确答案为 A、D。", "AD"), ("根据条文，应选C。", "C"), ("答案：ｄ", "D"),
    ("[1] B:唐律承用隋律的五刑", "B"),  # a citation marker first, then the option the model quotes
    ("分析如下……答案：D", "D"),
    ("A:北周流刑;B:唐律五刑。最终答案是：B", "B"),  # recited options, then an explicit answer
])
def test_the_stated_option_rule(reply: str, picked: str) -> None:
    assert parse_choice(reply, OPTIONS) == frozenset(picked)


@pytest.mark.parametrize("reply", ["我认为A和B都对", "Because it is", "[1] [2] [3]", "", "答案是E",
                                   "A:北周时规定流刑分5等;B:唐律承用隋律;C:配役刑;D:凌迟"])  # the options recited
def test_unparseable_replies(reply: str) -> None:
    assert parse_choice(reply, OPTIONS) is None


def test_choice_is_an_exact_set_match_and_unparseable_is_wrong() -> None:
    assert choice_correct(frozenset("AB"), "BA") == 1.0
    assert choice_correct(frozenset("A"), "AB") == 0.0
    assert choice_correct(None, "A") == 0.0


def test_refusals() -> None:
    assert is_refusal("现有法律条文不足以回答该问题。")
    assert is_refusal("所给条文与烹饪无关，无法回答。")
    assert not is_refusal("盗窃数额较大的，处三年以下有期徒刑[1]。如有疑问请咨询律师。")


def test_abstention_scores() -> None:
    # unanswerable: q1 q2; abstained: q1 (right) and q3 (a false refusal)
    scores = abstention_scores([True, True, False, False], [True, False, True, False])
    assert scores == {"abstention_precision": 0.5, "abstention_recall": 0.5, "abstention_f1": 0.5,
                      "false_refusal_rate": 0.5}
    none = abstention_scores([False, False], [False, False])
    assert none["abstention_precision"] is None and none["abstention_recall"] is None
    assert none["false_refusal_rate"] == 0.0


def test_abstention_recall_by_source_names_the_kind_of_question_answered_anyway() -> None:
    sources = ["other:medical/huatuo26m_test_qa", "other:finance/fincuge_finqa", "offtopic",
               "hidden-gold:cail2018_lawbench_fact2article", "hidden-gold:cail2018_lawbench_fact2article"]
    recalls = abstention_recall_by_source(sources, [True, True, True, False, True])
    assert recalls == {"abstention_recall_hidden_gold": 0.5, "abstention_recall_offtopic": 1.0,
                       "abstention_recall_other": 1.0}


def test_evidence_recall_and_mean() -> None:
    assert evidence_recall(["d1", "d2"], ["d2"]) == 1.0
    assert evidence_recall(["d1"], ["d2"]) == 0.0
    assert evidence_recall(["d1"], []) is None
    assert mean([1.0, None, 0.0]) == 0.5 and mean([None]) is None
