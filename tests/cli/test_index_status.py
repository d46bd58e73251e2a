"""`dossier index status` says how far a running (or killed) build is, from the builder's progress file."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main
from retrieval.build_progress import BuildProgress, read_progress


def test_status_reports_a_build_in_progress_and_a_killed_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DOSSIER_HOME", str(tmp_path))
    root = tmp_path / "domains" / "legal" / "index"
    progress = BuildProgress(root, "legal")
    progress.update("embed", 1200, 26390, force=True)
    assert main(["index", "status", "--domain", "legal"]) == 1  # no version yet
    out = capsys.readouterr().out
    assert "a build is running: embed 1200/26390" in out and "no index under" in out

    state = read_progress(root)
    assert state is not None and state["running"] and state["total"] == 26390
    (root / "build-progress.json").write_text((root / "build-progress.json").read_text().replace(
        f'"pid": {state["pid"]}', '"pid": 999999999'))
    main(["index", "status", "--domain", "legal"])
    assert "not running (killed?" in capsys.readouterr().out
    progress.finish()
    assert read_progress(root) is None
