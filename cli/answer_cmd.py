"""`dossier ask --domain D "question"`, `dossier chat --domain D` (interactive, streaming) and `dossier serve`."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli.keys_cmd import keys_file_arg
from core.errors import DossierError
from rag.build_generation import CHOICES


def _pipeline_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--domain", required=True)
    parser.add_argument("--backend", choices=CHOICES, help="generation backend (default: env "
                        "DOSSIER_GENERATOR_BACKEND, else the domain's [generation] backend)")
    parser.add_argument("-k", type=int, default=None, help="passages to retrieve (default: retrieval.final_k)")
    parser.add_argument("--model", help="base (the untuned model), tuned (the domain's shipped adapter) or a "
                        "directory (a LoRA adapter or a merged model); default: what the domain serves")


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
    serve.add_argument("--backend", choices=CHOICES, help="generation backend for every served domain")
    serve.add_argument("--build-threads", type=int, help="embedding threads of an index build the server starts "
                       "for a domain whose index is missing (default: domain.toml)")
    serve.add_argument("--log-level", default="info")
    _access_args(serve)
    serve.set_defaults(handler=_serve)


def _access_args(serve: argparse.ArgumentParser) -> None:
    keys_file_arg(serve)
    serve.add_argument("--insecure-no-auth", action="store_true", help="serve a non-loopback --host with no API "
                       "key: anyone who reaches the port may ask (without it serve refuses)")
    serve.add_argument("--rate-limit", type=float, metavar="PER_MINUTE", help="requests a minute per key, or per "
                       "client address without keys (default 120; 0: none); over it: 429 with Retry-After")
    serve.add_argument("--rate-burst", type=int, help="requests at once before the rate applies (default: a "
                       "minute's worth)")
    serve.add_argument("--max-body-bytes", type=int, help="largest request body (default 524288); over it: 413")
    serve.add_argument("--answer-deadline", type=float, metavar="SECONDS", help="time for one answer of /v1/ask "
                       "or /v1/chat/completions (default 300; 0: none); past it: 504 (a stream: a last error event)")
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN", help="a browser origin "
                       "allowed to call the API, e.g. https://app.example.org (repeat; default: none)")
    serve.add_argument("--audit-log", type=Path, help="one JSON line per /v1 request: time, key id, domain, route, "
                       "status, latency, client (default: $DOSSIER_HOME/audit.log)")
    serve.add_argument("--audit-questions", action="store_true", help="also write each question in the audit log")
    serve.add_argument("--header-timeout", type=float, metavar="SECONDS", help="time from a request's first byte to "
                       "the end of its headers (default 10); past it the connection is closed (408)")
    serve.add_argument("--upload-max-mb", type=float, metavar="MIB", help="largest file a user may upload into "
                       "a private collection (default: env DOSSIER_UPLOAD_MAX_MB, else 50); over it: 413")
    serve.add_argument("--max-header-bytes", type=int, help="largest request line and headers together (default "
                       "65536); over it: 431 and the connection is closed")


def _build(args: argparse.Namespace) -> Any:
    from domains import load_domain
    from rag.build import build_pipeline
    from rag.generator_choice import with_generator

    return build_pipeline(with_generator(load_domain(args.domain), args.model), backend=args.backend)


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
            elif chunk.delta:
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
    from api.audit import AuditLog
    from api.http_server import server_options
    from api.preparation import serve_plan
    from core.paths import audit_log_file, keys_file
    from domains import load_domain

    domains = [d for item in args.domains for d in item.split(",") if d]
    for domain in domains:
        load_domain(domain)  # an unknown domain fails here, with the valid names, before anything loads
    keys_path = args.keys_file or keys_file()
    auth = _auth_state(args.host, keys_path, args.insecure_no_auth)
    audit = AuditLog(args.audit_log or audit_log_file(), questions=args.audit_questions)
    app = create_app(domains, build=partial(default_builder, backend=args.backend),
                     preparation=serve_plan(args.backend, args.build_threads), keys_file=keys_path,
                     limits=_limits(args), audit=audit, cors_origins=args.cors_origin,
                     upload_max_bytes=_upload_max_bytes(args.upload_max_mb))
    preparation_log = logging.getLogger("api.preparation")  # its progress lines, even without -v
    preparation_log.setLevel(min(logging.INFO, preparation_log.getEffectiveLevel()))
    print(f"Dossier on http://{args.host}:{args.port} (docs at /docs) serving {', '.join(domains)}; "
          f"/readyz says what is still being prepared; {auth}; audit log {audit.path}", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                **server_options(_header_limits(args)))  # slow or huge headers never reach the app: bounded here
    return 0


def _upload_max_bytes(mib: float | None) -> int | None:
    if mib is None:
        return None  # the app reads DOSSIER_UPLOAD_MAX_MB, else its default
    if not mib > 0:
        raise DossierError(f"--upload-max-mb {mib}: must be a positive number of MiB")
    return int(mib * 1024 * 1024)


def _limits(args: argparse.Namespace) -> Any:
    from api.limits import SERVE_REQUESTS_PER_MINUTE, Limits

    return _from_flags(Limits, {"requests_per_minute": args.rate_limit, "burst": args.rate_burst,
                                "max_body_bytes": args.max_body_bytes, "answer_deadline_s": args.answer_deadline},
                       defaults={"requests_per_minute": SERVE_REQUESTS_PER_MINUTE})


def _header_limits(args: argparse.Namespace) -> Any:
    from api.http_server import HeaderLimits

    return _from_flags(HeaderLimits, {"read_timeout_s": args.header_timeout, "max_bytes": args.max_header_bytes})


def _from_flags(limits: Callable[..., Any], given: dict[str, Any], defaults: dict[str, Any] | None = None) -> Any:
    """`limits` built from the flags that were given (None: not given), over `defaults`; a bad value is an error
    the user can fix."""
    try:
        return limits(**(defaults or {}) | {k: v for k, v in given.items() if v is not None})
    except ValueError as err:
        raise DossierError(f"serve: {err}") from err


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name may resolve to any interface


def _auth_state(host: str, keys_path: Path, insecure: bool) -> str:
    """How the server will check callers; refuses a non-loopback host with no key unless `insecure`."""
    from api.auth import API_KEYS_ENV, keys_from_env
    from api.keys import KeyStore

    stored, env = len(KeyStore(keys_path).records()), len(keys_from_env())
    if stored or env:
        return f"auth on ({stored} key(s) in {keys_path}, {env} in {API_KEYS_ENV})"
    if _is_loopback(host):
        return "auth off (loopback, no API key; `dossier keys add` turns it on)"
    if not insecure:
        raise DossierError(
            f"refusing to serve on {host} with no API key: anyone who reaches the port could ask. Add one with "
            f"`dossier keys add --name NAME` (clients send Authorization: Bearer <key>) or set {API_KEYS_ENV}; "
            "or listen on 127.0.0.1; or pass --insecure-no-auth to serve without auth on purpose")
    return f"auth OFF on {host} (--insecure-no-auth): anyone who reaches the port may ask"
