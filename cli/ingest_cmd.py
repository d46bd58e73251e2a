"""`dossier ingest --domain NAME [PATH ...]`: load, clean, dedup and chunk a corpus, incrementally.

Exit status: 0 ok, 3 "completed with skips" (some inputs were skipped; they are listed), 2 error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_SKIPS = 3


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ingest",
        help="load, clean, de-duplicate and chunk a domain's corpus (incremental)",
        description="With no PATH: the corpus declared in the domain.toml. With PATHs (files or folders): exactly "
        "those, kept beside the declared corpus; a later run without PATHs does not remove them.",
    )
    parser.add_argument("--domain", default="legal", help="domain name (default: legal)")
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders to ingest")
    parser.add_argument("--workspace", type=Path, help="output folder (default: $DOSSIER_HOME/domains/<d>/ingest)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a summary")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from domains import load_domain
    from ingest.pipeline import run_ingest

    cfg = load_domain(args.domain)
    report = run_ingest(cfg, args.paths, workspace=args.workspace, progress=not args.no_progress)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(report.summary())
    if report.completed_with_skips:
        message = f"completed with skips: {len(report.skipped)} input(s) skipped (reasons listed in report.json)"
        print(message, file=sys.stderr if args.json else sys.stdout)  # --json keeps stdout parseable
        return EXIT_SKIPS
    return 0
