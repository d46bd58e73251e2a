"""The feedback loop: rows the service stores (feedback/preferences.jsonl, feedback/kto.jsonl) train DPO / KTO."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_helpers import write_jsonl

from cli import main
from core.errors import ConfigError
from training.args import DataArgs
from training.generator.preferences import feedback_dir, load_kto, load_pairs
from training.launch import CONFIGS_DIR

ROW = {"prompt": "头痛怎么办？", "chosen": "先休息，持续不缓解请就医。", "rejected": "随便吃点药。",
       "domain": "medical", "question": "头痛怎么办？", "created": "2026-11-23T20:00:00Z"}


@pytest.fixture()
def feedback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOSSIER_HOME", str(tmp_path))
    folder = feedback_dir("medical")
    folder.mkdir(parents=True)
    write_jsonl(folder / "preferences.jsonl", [
        ROW, dict(ROW), {**ROW, "domain": "legal"}, {**ROW, "chosen": "", "rejected": "x"},
        {**ROW, "prompt": [{"role": "system", "content": "医生"}, {"role": "user", "content": "发烧？"}]},
    ])
    write_jsonl(folder / "kto.jsonl", [{"prompt": "咳嗽？", "completion": "多喝水，观察。", "label": True},
                                       {"prompt": "咳嗽？", "completion": "不用管。", "label": "bad"}])
    return folder


def test_feedback_pairs_are_validated_and_deduplicated(medical, feedback: Path) -> None:
    pairs, report = load_pairs(medical, DataArgs(source="feedback"))
    assert len(pairs) == report.kept == 2
    assert report.dropped == {"duplicate": 1, "other_domain": 1, "empty_chosen": 1}
    assert pairs[1].prompt == (("system", "医生"), ("user", "发烧？"))


def test_feedback_kto_rows_and_pairs_split_into_good_and_bad(medical, feedback: Path) -> None:
    rows, report = load_kto(medical, DataArgs(source="feedback"))
    assert [r.label for r in rows] == [True] and report.dropped == {"label_not_boolean": 1}
    from_pairs, _ = load_kto(medical, DataArgs(source="feedback", format="preference"))
    assert [r.label for r in from_pairs[:2]] == [True, False]


def test_no_feedback_yet_says_so(medical, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOSSIER_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="no feedback yet"):
        load_pairs(medical, DataArgs(source="feedback"))


def test_dpo_trains_on_feedback_from_the_cli(feedback: Path, tiny_lm_dir, tmp_path: Path) -> None:
    argv = ["train", "dpo", "--domain", "medical", "--recipe", str(CONFIGS_DIR / "dpo_medical.toml"), "--feedback",
            "--model", str(tiny_lm_dir), "--max-steps", "1", "--output", str(tmp_path / "run"),
            "--set", "train.precision='fp32'"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "run" / "data_report.json").read_text())["kept"] == 2
    assert json.loads((tmp_path / "run" / "config.json").read_text())["recipe"]["data"]["source"] == "feedback"
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()
