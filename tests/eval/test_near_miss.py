"""Near-miss calibration: the threshold that keeps a share of answerable questions, the weight that refuses the most
near misses, a real retriever's dev questions asked with and without their gold, and the domain.toml lines."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import ConfigError
from eval.near_miss import Evidence, calibrate_near_miss, choose, threshold_keeping, write_near_miss


def test_the_threshold_keeps_the_share_asked_for() -> None:
    strengths = [0.1 * i for i in range(1, 11)]  # 0.1 .. 1.0
    assert threshold_keeping(strengths, 0.9) == pytest.approx(0.2)  # only 0.1 is under it
    assert threshold_keeping(strengths, 0.95) == pytest.approx(0.1)  # half a question: none refused
    with pytest.raises(ValueError):
        threshold_keeping([], 0.9)


def test_coverage_separates_what_the_score_alone_cannot() -> None:
    # the same dense scores on both sides; answers hold the question's terms, near misses do not
    answerable = [Evidence(s, c) for s, c in [(0.40, 0.9), (0.45, 0.8), (0.50, 0.7), (0.55, 0.9), (0.60, 0.6)]]
    near_misses = [Evidence(s, c) for s, c in [(0.40, 0.1), (0.45, 0.2), (0.50, 0.1), (0.55, 0.3), (0.60, 0.2)]]
    best, score_alone = choose(answerable, near_misses, keep=0.8)
    assert score_alone.refused == pytest.approx(0.2)  # the lowest dense score only
    assert best.weight > 0 and best.refused == 1.0 and best.kept == pytest.approx(0.8)


def test_a_real_retriever_s_dev_questions_make_both_kinds(legal_cfg, slice_retriever) -> None:
    result = calibrate_near_miss(legal_cfg, slice_retriever, per_set=12, keep=0.9,
                                 evalsets=["cail2018_lawbench_fact2article"])
    per_set = result["per_set"]["cail2018_lawbench_fact2article"]
    assert per_set["near_misses"] == 12 and 0 < per_set["answerable"] <= 12
    assert result["kept"] >= 0.9  # the bar keeps what was asked
    assert (per_set["kept"], per_set["refused"]) == (result["kept"], result["refused"])  # one set: the same figures
    with pytest.raises(ConfigError, match="name no gold"):
        calibrate_near_miss(legal_cfg, slice_retriever, per_set=2, keep=0.9, evalsets=["jecqa_lawbench_mcq"])
    with pytest.raises(ConfigError, match="--keep"):
        calibrate_near_miss(legal_cfg, slice_retriever, per_set=2, keep=1.0)


def test_the_two_lines_are_written_into_the_abstention_section_and_replaced_next_time(legal_cfg,
                                                                                       tmp_path: Path) -> None:
    toml = ('name = "x"\n\n[abstention]\nthreshold = 0.2  # calibrated\nscore = "dense"\n\n'
            '[[evalsets]]\nname = "a"\n')
    (tmp_path / "domain.toml").write_text(toml, encoding="utf-8")
    cfg = replace(legal_cfg, root=tmp_path)
    write_near_miss(cfg, 0.5, 0.4627, "dossier eval calibrate --near-miss", date="2026-12-03")
    write_near_miss(cfg, 0.25, 0.41, "dossier eval calibrate --near-miss", date="2026-12-04")
    text = (tmp_path / "domain.toml").read_text(encoding="utf-8")
    assert text == ('name = "x"\n\n[abstention]\nthreshold = 0.2  # calibrated\nscore = "dense"\n'
                    'near_miss_weight = 0.25  # chosen by `dossier eval calibrate --near-miss` on 2026-12-04\n'
                    'near_miss_threshold = 0.4100\n\n[[evalsets]]\nname = "a"\n')
    (tmp_path / "domain.toml").write_text('name = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no \[abstention\]"):
        write_near_miss(cfg, 0.5, 0.4, "c")
