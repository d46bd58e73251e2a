"""The judge glue of answer runs: what is sent to RAGAS, and the errors that name their fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from eval import answer_judge


def _row(row_id: str, kind: str, abstained: bool = False) -> dict:
    return {"id": row_id, "kind": kind, "question": "q", "answer": "a", "contexts": ["passage"],
            "reference": "ref" if kind == "reference" else "B", "abstained": abstained}


def test_judge_rows_leave_out_unanswerable_and_keep_references_of_reference_sets() -> None:
    rows = [_row("r", "reference"), _row("m", "mcq"), _row("u", "unanswerable", abstained=True),
            _row("a", "reference", abstained=True)]
    sent = answer_judge.judge_rows(rows)
    assert [r["id"] for r in sent] == ["r", "m", "a"]
    assert sent[0]["reference"] == "ref" and sent[1]["reference"] is None  # an option letter is no reference
    assert sent[2]["abstained"] is True and sent[0]["contexts"] == ["passage"]


def test_a_missing_ragas_venv_names_the_make_target(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(answer_judge, "RAGAS_PYTHON", tmp_path / "no-venv" / "python")
    with pytest.raises(ConfigError, match="make ragas-env"):
        answer_judge.run_judge([_row("r", "reference")], tmp_path, "http://127.0.0.1:9/v1", None)
