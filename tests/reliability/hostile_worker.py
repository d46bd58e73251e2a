"""Runs hostile inputs through the real `run_ingest`, one at a time, in this process (a subprocess of the test):
`python hostile_worker.py cases.json` prints one JSON line per case as soon as it is done, so the test can time
each one out and tell which one hung or crashed the process.

Peak memory per case: Linux keeps a process's peak RSS (VmHWM); writing "5" to /proc/self/clear_refs resets it to
the current RSS, so each case's peak is measured alone. An address-space cap keeps a bomb that slips through from
taking the machine with it (it fails with MemoryError instead, and the test sees that).
"""

from __future__ import annotations

import ctypes
import gc
import json
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ADDRESS_SPACE_CAP = 6 * 1024**3
TEXT_SAMPLE = 100_000  # characters kept from each end of a document for the checks
PROMPTS = {"system": "s", "answer": "{context}{question}", "rewrite": "{history}{question}", "abstain": "n"}


def _reset_peak() -> None:
    """Give freed memory back to the system first, so a case's peak is not the one before it."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _sample(text: str) -> str:
    return text if len(text) <= 2 * TEXT_SAMPLE else text[:TEXT_SAMPLE] + "\n…\n" + text[-TEXT_SAMPLE:]


def run_case(case: dict[str, Any], workspace: Path) -> dict[str, Any]:
    from domains.config import domain_from_mapping
    from ingest.pipeline import STORE_FILE, run_ingest
    from ingest.store import ChunkStore

    folder = Path(case["folder"])
    corpus = case.get("corpus") or []
    data = {"name": "hostile", "display_name": "H", "language": "zh", "corpus": corpus, "prompts": PROMPTS}
    cfg = domain_from_mapping(data, root=folder)
    report = run_ingest(cfg, [] if corpus else [Path(case["path"])], workspace=workspace, progress=False)
    with ChunkStore(workspace / STORE_FILE) as store:
        documents = {d.doc_id: d for d in store.documents()}
        offsets_ok = all(c.text == documents[c.doc_id].text[c.start : c.end] for c in store.chunks())
    return {"report": report.to_dict(), "texts": [_sample(d.text) for d in documents.values()],
            "titles": [d.title for d in documents.values()], "offsets_ok": offsets_ok}


def main(argv: list[str]) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))
    cases = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    for case in cases:
        _reset_peak()
        started = time.perf_counter()
        try:
            result = run_case(case, Path(case["workspace"]))
        except BaseException as err:  # noqa: BLE001 - the test reports any escape from run_ingest as the failure
            result = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(limit=8)}
        result.update(name=case["name"], seconds=round(time.perf_counter() - started, 3), peak_mib=round(_peak_mib()))
        print(json.dumps(result, ensure_ascii=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
