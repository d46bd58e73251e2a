"""Charge task: splits never leak training cases into the test set; replies are read fairly; scores are right."""

from __future__ import annotations

import pytest

from eval.splits import split_of
from training.generator.charges import UNKNOWN, ChargeReader, charge_vocabulary, load_cases, score_charges

VOCAB = ["盗窃", "诈骗", "合同诈骗", "故意伤害", "组织、强迫、引诱、容留、介绍卖淫"]


def test_train_and_test_cases_are_disjoint_and_cover_the_set(legal) -> None:
    train = load_cases(legal, "cail2018_charges", ("train", "dev"))
    test = load_cases(legal, "cail2018_charges", ("test",))
    assert {c.case_id for c in train}.isdisjoint({c.case_id for c in test})
    assert len(train) + len(test) == 731 and all(split_of(c.case_id) == "test" for c in test)
    assert all(c.charges for c in train + test)
    assert len(charge_vocabulary(legal, "cail2018_charges")) == 187  # public part; 202 with the held-back 20 %


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("盗窃罪", {"盗窃"}),
        ("被告人犯盗窃罪。", {"盗窃"}),
        ("合同诈骗罪", {"合同诈骗"}),  # not also 诈骗
        ("合同诈骗罪；诈骗罪", {"合同诈骗", "诈骗"}),
        ("组织、强迫、引诱、容留、介绍卖淫罪", {"组织、强迫、引诱、容留、介绍卖淫"}),
        ("组织强迫引诱容留介绍卖淫", {"组织、强迫、引诱、容留、介绍卖淫"}),
        ("轻伤", {UNKNOWN}),
        ("", set()),
    ],
)
def test_reader_maps_replies_onto_the_vocabulary(reply: str, expected: set[str]) -> None:
    assert ChargeReader(VOCAB).read(reply) == expected


def test_scores_exact_sets_and_micro_f1() -> None:
    predicted = [frozenset({"盗窃"}), frozenset({"诈骗"}), frozenset({"盗窃", UNKNOWN})]
    gold = [["盗窃"], ["合同诈骗"], ["盗窃", "故意伤害"]]
    scores = score_charges(predicted, gold)
    assert scores["accuracy"] == pytest.approx(100 / 3)
    # tp 2 (盗窃 twice), fp 2 (诈骗, unknown), fn 2 (合同诈骗, 故意伤害)
    assert scores["micro_precision"] == scores["micro_recall"] == scores["micro_f1"] == pytest.approx(50.0)
    with pytest.raises(ValueError):
        score_charges([], [])
