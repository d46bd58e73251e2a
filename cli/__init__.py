"""`dossier` command line. Each command group lives in its own module with a `register(subparsers)`;
handlers import their heavy dependencies when they run, so `dossier --help` stays fast."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from core.errors import DossierError

log = logging.getLogger("dossier")


def build_parser() -> argparse.ArgumentParser:
    from cli import answer_cmd, eval_cmd, export_cmd, index_cmd, ingest_cmd, keys_cmd, models_cmd, train_cmd

    parser = argparse.ArgumentParser(prog="dossier", description="Domain assistant that cites its evidence.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (models_cmd, ingest_cmd, index_cmd, eval_cmd, answer_cmd, keys_cmd, train_cmd, export_cmd):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose + 1, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args) or 0)
    except DossierError as err:
        log.debug("command failed", exc_info=True)
        print(f"dossier: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
