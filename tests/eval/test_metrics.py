"""Ranking and answer metrics on hand-computed cases, including ties, duplicates and empty gold sets."""

from __future__ import annotations

import math

import pytest

from eval.metrics import (
    char_f1,
    dedupe,
    exact_match,
    hit_at_k,
    lcs_length,
    mean_metrics,
    ndcg_at_k,
    ranking_metrics,
    recall_at_k,
    reciprocal_rank,
    rouge_l,
)


def test_recall_counts_fraction_of_gold_in_top_k() -> None:
    ranked = ["a", "b", "c", "d"]
    assert recall_at_k(ranked, {"b", "d"}, 1) == 0.0
    assert recall_at_k(ranked, {"b", "d"}, 2) == 0.5
    assert recall_at_k(ranked, {"b", "d"}, 4) == 1.0
    assert recall_at_k(ranked, {"b", "z"}, 10) == 0.5  # a ranking shorter than k is scored as it is


def test_duplicates_count_once_at_first_rank() -> None:
    ranked = ["a", "a", "a", "b"]  # three chunks of document a
    assert dedupe(ranked) == ["a", "b"]
    assert recall_at_k(ranked, {"b"}, 2) == 1.0
    assert reciprocal_rank(ranked, {"b"}) == 0.5
    assert hit_at_k(["a", "a"], {"a"}, 1) == 1.0
    assert recall_at_k(["g", "g"], ["g", "g"], 1) == 1.0  # duplicate gold ids are one gold id


def test_ties_follow_the_given_order() -> None:
    # two documents with equal scores: whichever the caller put first holds rank 1
    assert reciprocal_rank(["x", "g"], {"g"}) == 0.5
    assert reciprocal_rank(["g", "x"], {"g"}) == 1.0


def test_mrr_and_cutoff() -> None:
    assert reciprocal_rank(["a", "b", "c"], {"c"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["a", "b", "c"], {"c"}, k=2) == 0.0
    assert reciprocal_rank(["a"], {"z"}) == 0.0


def test_ndcg_hand_computed() -> None:
    # gold {a, c}; ranking a, b, c -> DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    expected = 1.5 / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["a", "b", "c"], {"a", "c"}, 3) == pytest.approx(expected)
    assert ndcg_at_k(["a", "c"], {"a", "c"}, 2) == pytest.approx(1.0)
    # ideal is capped at k: with k=1 and two gold ids, a perfect first hit scores 1
    assert ndcg_at_k(["c", "b"], {"a", "c"}, 1) == pytest.approx(1.0)
    assert ndcg_at_k(["b", "c"], {"c"}, 2) == pytest.approx(1 / math.log2(3))


@pytest.mark.parametrize("fn", [recall_at_k, hit_at_k, ndcg_at_k])
def test_empty_gold_and_bad_k_raise(fn) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="empty gold"):
        fn(["a"], set(), 5)
    with pytest.raises(ValueError, match="k must be"):
        fn(["a"], {"a"}, 0)


def test_ranking_metrics_and_mean() -> None:
    row = ranking_metrics(["a", "b"], {"b"}, [1, 5])
    assert row == {
        "recall@1": 0.0, "hit@1": 0.0, "ndcg@1": 0.0,
        "recall@5": 1.0, "hit@5": 1.0, "ndcg@5": pytest.approx(1 / math.log2(3)), "mrr": 0.5,
    }
    assert mean_metrics([{"m": 1.0}, {"m": 0.0}]) == {"m": 0.5}
    with pytest.raises(ValueError):
        mean_metrics([])


def test_exact_match_normalises_width_case_space_and_punctuation() -> None:
    assert exact_match("ＡＢＣ １２３。", "abc123") == 1.0
    assert exact_match("盗窃罪", "盗窃") == 0.0


def test_char_f1_counts_characters() -> None:
    # pred 盗窃罪 (3 chars), ref 盗窃 (2 chars): common 2 -> P 2/3, R 1 -> F1 0.8
    assert char_f1("盗窃罪", "盗窃") == pytest.approx(0.8)
    assert char_f1("，", "") == 1.0  # both empty after normalisation
    assert char_f1("甲", "") == 0.0
    assert char_f1("甲乙", "丙丁") == 0.0


def test_rouge_l_uses_longest_common_subsequence() -> None:
    assert lcs_length("abcde", "ace") == 3
    # pred 甲乙丙丁, ref 甲丙戊: LCS 甲丙 = 2 -> P 2/4, R 2/3 -> F 4/7
    assert rouge_l("甲乙丙丁", "甲丙戊") == pytest.approx(4 / 7)
    assert rouge_l("丁丙乙甲", "甲乙丙丁") == pytest.approx(0.25)  # order matters, unlike char F1
    assert char_f1("丁丙乙甲", "甲乙丙丁") == 1.0


def test_reference_contained() -> None:
    from eval.metrics import reference_contained

    assert reference_contained("该公司减持了 1,000万股[1]。", "1000万股") == 1.0  # punctuation and spaces dropped
    assert reference_contained("减持了一千万股", "1000万股") == 0.0
    assert reference_contained("任何回答", "") == 0.0
