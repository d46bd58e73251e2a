"""`python -m edge ask BUNDLE "question"`, `python -m edge serve BUNDLE`, `python -m edge verify BUNDLE`.

In the bundle itself: `PYTHONPATH=BUNDLE/runner python -m edge ask BUNDLE "..."` (README.md in the bundle)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import DossierError

log = logging.getLogger("edge")


def _bundle_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, help="the bundle folder (unpacked from the .tar.gz)")
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp decode threads (default: the domain's)")
    parser.add_argument("--prefill-threads", type=int, default=0, help="llama.cpp prompt threads (default: the "
                        "domain's)")
    parser.add_argument("--sizes-only", action="store_true", help="check file sizes, not sha256 (faster start)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge", description="Answer from a Dossier edge bundle, offline.")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ask = commands.add_parser("ask", help="answer one question with citations (or abstain)")
    _bundle_args(ask)
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="the whole answer (citations, hits, trace) as JSON")
    ask.set_defaults(handler=_ask)
    serve = commands.add_parser("serve", help="serve /v1/ask and the OpenAI-compatible /v1/chat/completions")
    _bundle_args(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=_serve)
    verify = commands.add_parser("verify", help="check every file against the manifest's sha256")
    verify.add_argument("bundle", type=Path)
    verify.set_defaults(handler=_verify)
    return parser


def _pipeline(args: argparse.Namespace):  # -> RagPipeline; imported lazily so --help stays instant
    from edge.runtime import Threads, edge_pipeline, open_bundle

    bundle = open_bundle(args.bundle, hashes=not args.sizes_only)
    return bundle, edge_pipeline(bundle, Threads(decode=args.threads, prefill=args.prefill_threads))


def _ask(args: argparse.Namespace) -> int:
    from rag.presenting import answer_epilogue, answer_json, sources_text

    _, pipeline = _pipeline(args)
    answer = pipeline.answer(args.question)
    # the full service's `dossier ask` shows an answer the same way (cli/answer_cmd.py)
    plain = [answer.text + answer_epilogue(answer), sources_text(answer) if answer.citations else ""]
    print(json.dumps(answer_json(answer, pipeline.domain), ensure_ascii=False, indent=2) if args.json
          else "\n\n".join(p for p in plain if p))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from edge.server import create_app

    bundle, pipeline = _pipeline(args)
    uvicorn.run(create_app(pipeline, bundle.manifest), host=args.host, port=args.port, log_level="info")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from edge.manifest import verify_bundle

    manifest = verify_bundle(args.bundle)
    print(f"{args.bundle}: {len(manifest['files'])} files match the manifest (domain {manifest['domain']})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args) or 0)
    except DossierError as err:
        print(f"edge: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
