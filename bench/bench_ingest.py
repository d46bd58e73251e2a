"""Ingest throughput on a shipped corpus: documents/s and chunks/s for a fresh ingest (median of N runs, each into
a new workspace), plus the time of a no-op re-ingest of the same corpus in the same run.

    .venv/bin/python bench/bench_ingest.py [--domain legal] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from domains import load_domain
from ingest.pipeline import run_ingest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domain", default="legal")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load_domain(args.domain)
    fresh, noop = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            started = time.perf_counter()
            report = run_ingest(cfg, workspace=Path(tmp), progress=False)
            fresh.append(time.perf_counter() - started)
            started = time.perf_counter()
            again = run_ingest(cfg, workspace=Path(tmp), progress=False)
            noop.append(time.perf_counter() - started)
            assert again.chunks_added == 0, "a re-ingest of an unchanged corpus must add nothing"
    seconds, idle = statistics.median(fresh), statistics.median(noop)
    parsed = report.documents + report.exact_duplicates + report.near_duplicates + report.id_conflicts
    print(f"bench_ingest domain={args.domain} repeats={args.repeats} (fresh workspace each)")
    print(f"  corpus: {parsed} records read, {report.documents} documents kept, {report.chunks} chunks")
    print(f"  fresh ingest: median {seconds:.2f} s  (runs: {', '.join(f'{s:.2f}' for s in fresh)})")
    print(f"  throughput: {report.documents / seconds:,.0f} documents/s, {report.chunks / seconds:,.0f} chunks/s"
          f" ({parsed / seconds:,.0f} records read/s)")  # fmt: skip
    print(f"  no-op re-ingest: median {idle * 1000:.0f} ms  ({seconds / idle:,.0f}x faster than a fresh ingest)")


if __name__ == "__main__":
    main()
