"""Hostile inputs through the real ingest: every case of `hostile_cases.CASES` (zip bombs, broken PDFs, deep HTML,
bad encodings, huge lines, symlink tricks ...) ends skipped or refused with its reason, or cleaned, never with a
crashed run, a hang (per-case timeout) or unbounded memory (peak RSS of the ingest subprocess, per case). Upload
names are checked by `ingest.sources.upload_path`, which the upload route must use (issue 15)."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hostile_case import Case
from hostile_cases import CASES
from hostile_run import prepare, run_all

from core.errors import IngestError
from ingest.sources import upload_path

log = logging.getLogger(__name__)
PEAK_MIB_BOUND = 1536  # the whole ingest process, imports included (~40 MiB of them)
WHOLE_RUN = "all_files_in_one_run"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("hostile")
    specs = prepare(CASES, root)
    whole, linked = _one_folder_of_all(specs, root)
    found = run_all([*specs, whole], root)
    found[WHOLE_RUN]["linked"] = linked
    (root / "results.json").write_text(json.dumps(found, ensure_ascii=False, indent=1), encoding="utf-8")
    log.info("hostile cases: %s", root / "results.json")
    return found


def _one_folder_of_all(specs: list[dict[str, Any]], root: Path) -> tuple[dict[str, Any], list[str]]:
    """Every case that is one plain file, hard-linked into one folder as `<case name><suffix>`: one run over all."""
    folder = root / WHOLE_RUN / "input" / "all"
    folder.mkdir(parents=True)
    linked = []
    for spec in specs:
        path = Path(spec["path"])
        if not spec["corpus"] and path.is_file() and not path.is_symlink():
            os.link(path, folder / f"{spec['name']}{''.join(path.suffixes[-2:])}")
            linked.append(spec["name"])
    spec = {"name": WHOLE_RUN, "folder": str(folder.parent), "path": str(folder),
            "workspace": str(root / WHOLE_RUN / "workspace"), "corpus": [], "make_s": 0.0}
    return spec, linked


def _reasons(result: dict[str, Any]) -> list[str]:
    return [f"{item['path']}: {item['reason']}" for item in result["report"]["skipped"]]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_hostile_file_is_refused_or_cleaned_never_crashes(case: Case, results: dict[str, dict[str, Any]]) -> None:
    result = results[case.name]
    assert "error" not in result, f"{case.name}: {result['error']}\n{result.get('traceback', '')}"
    assert result["peak_mib"] < PEAK_MIB_BOUND, f"{case.name} peaked at {result['peak_mib']} MiB"
    report, reasons = result["report"], _reasons(result)
    if case.reason:
        assert any(re.search(case.reason, r) for r in reasons), f"{case.name}: no reason matches: {reasons}"
    if case.expect == "skipped":
        assert report["files_ingested"] == 0 and reasons, f"{case.name}: {report}"
    else:
        assert report["files_ingested"] >= 1, f"{case.name} was not ingested: {reasons}"
        assert result["offsets_ok"], f"{case.name}: a chunk is not document.text[start:end]"
    if case.expect in ("cleaned", "ingested") and not case.reason:
        assert not reasons, f"{case.name}: {reasons}"
    if case.check is not None:
        assert case.check(result), f"{case.name}: its stored text fails the check"


def test_one_run_over_all_the_hostile_files_ingests_the_good_ones(results: dict[str, dict[str, Any]]) -> None:
    result = results[WHOLE_RUN]
    assert "error" not in result, result["error"]
    assert result["peak_mib"] < PEAK_MIB_BOUND, f"the whole run peaked at {result['peak_mib']} MiB"
    expect = {c.name: c.expect for c in CASES}
    good = {name for name in result["linked"] if expect[name] != "skipped"}
    refused = {Path(item["path"]).name.split(".")[0] for item in result["report"]["skipped"]}
    assert result["report"]["files_ingested"] == len(good)
    assert refused >= set(result["linked"]) - good


REFUSED_UPLOAD_NAMES = {
    "../../etc/passwd": "a path, not a file name",
    "/etc/passwd": "a path, not a file name",
    "..\\..\\windows\\win.ini": "a path, not a file name",
    "a/../../b.txt": "a path, not a file name",
    "..": "not a file name",
    "": "not a file name",
    "contract\x00.pdf": "control, invisible",
    "line\nbreak.txt": "control, invisible",
    "invoice\u202etxt.pdf": "control, invisible",  # shown as "invoicefdp.txt"
    "zero\u200bwidth.pdf": "control, invisible",
    "\udcff\udcfe.txt": "control, invisible or undecodable",  # bytes that were not UTF-8
    ".hidden.pdf": "hidden or lock-file",
    "~$lock.docx": "hidden or lock-file",
    "合同" * 50 + ".pdf": "longer than 255 bytes",
    "payload.exe": "unsupported file type '.exe'",
}


@pytest.mark.parametrize("name", REFUSED_UPLOAD_NAMES, ids=lambda n: ascii(n)[1:-1][:30])
def test_an_upload_name_that_is_a_path_or_hides_something_is_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=re.escape(REFUSED_UPLOAD_NAMES[name])):
        upload_path(tmp_path, name)


@pytest.mark.parametrize("name", ["合同.pdf", "contract v2 (final).docx", "notes.md", "laws.jsonl.gz"])
def test_a_plain_upload_name_is_saved_inside_the_folder(name: str, tmp_path: Path) -> None:
    assert upload_path(tmp_path, name) == tmp_path / name
