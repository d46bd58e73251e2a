"""`dossier ask --domain D "question"`, `dossier chat --domain D` (interactive, streaming) and `dossier serve`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

BACKENDS = ("transformers", "vllm", "openai-http", "llama-cpp")


def _pipeline_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--domain", required=True)
    parser.add_argument("--backend", choices=BACKENDS, help="generation backend (default: env "
                        "DOSSIER_GENERATOR_BACKEND, else the domain's [generation] backend)")
    parser.add_argument("-k", type=int, default=None, help="passages to retrieve (default: retrieval.final_k)")


def register(commands: argparse._SubParsersAction) -> None:
    ask = commands.add_parser("ask", help="answer one question with citations (or abstain)")
    _pipeline_args(ask)
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the whole answer (citations, hits, trace) as JSON")
    ask.set_defaults(handler=_ask)

    chat = commands.add_parser("chat", help="interactive, streaming conversation (follow-ups are rewritten)")
    _pipeline_args(chat)
    chat.set_defaults(handler=_chat)

    serve = commands.add_parser("serve", help="serve the REST / OpenAI-compatible API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--domains", nargs="+", default=["legal"], help="domains to serve (space or comma separated)")
    serve.add_argument("--backend", choices=BACKENDS, help="generation backend for every served domain")
    serve.add_argument("--build-threads", type=int, help="embedding threads of an index build the server starts "
                       "for a domain whose index is missing (default: domain.toml)")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=_serve)


def _build(args: argparse.Namespace) -> Any:
    from domains import load_domain
    from rag.build import build_pipeline

    return build_pipeline(load_domain(args.domain), backend=args.backend)


def _ask(args: argparse.Namespace) -> int:
    from rag.presenting import answer_epilogue, answer_json, sources_text

    pipeline = _build(args)
    answer = pipeline.answer(args.question, k=args.k)
    if args.json:
        print(json.dumps(answer_json(answer, pipeline.domain), ensure_ascii=False, indent=2))
        return 0
    print(answer.text + answer_epilogue(answer))
    if answer.citations:
        print("\n" + sources_text(answer))
    return 0


def _chat(args: argparse.Namespace) -> int:
    from core.protocols import Message
    from rag.presenting import answer_epilogue, sources_text

    pipeline = _build(args)
    history: list[Message] = []
    print(f"{pipeline.cfg.display_name} — /sources shows the last citations, /reset forgets, /quit ends.")
    last = None
    while True:
        try:
            question = input("\n> ").strip()
        except EOFError:
            return 0
        if question in ("/quit", "/exit"):
            return 0
        if question == "/reset":
            history, last = [], None
            continue
        if question == "/sources":
            print(sources_text(last) if last and last.citations else "(no citations)")
            continue
        if not question:
            continue
        for chunk in pipeline.stream(question, tuple(history), k=args.k):
            if chunk.answer is not None:
                last = chunk.answer
                print(answer_epilogue(last), flush=True)
            else:
                print(chunk.delta, end="", flush=True)
        history += [Message("user", question), Message("assistant", last.text if last else "")]


def _serve(args: argparse.Namespace) -> int:
    """Listens at once; what a domain still needs (its index, the llama.cpp wheel, its models) is prepared in the
    background, and /readyz says what and how long (api/preparation.py)."""
    import logging
    from functools import partial

    import uvicorn

    from api import create_app
    from api.app import default_builder
    from api.preparation import serve_plan
    from domains import load_domain

    domains = [d for item in args.domains for d in item.split(",") if d]
    for domain in domains:
        load_domain(domain)  # an unknown domain fails here, with the valid names, before anything loads
    app = create_app(domains, build=partial(default_builder, backend=args.backend),
                     preparation=serve_plan(args.backend, args.build_threads))
    preparation_log = logging.getLogger("api.preparation")  # its progress lines, even without -v
    preparation_log.setLevel(min(logging.INFO, preparation_log.getEffectiveLevel()))
    print(f"Dossier on http://{args.host}:{args.port} (docs at /docs) serving {', '.join(domains)}; "
          f"/readyz says what is still being prepared", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
