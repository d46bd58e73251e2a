"""`dossier index build|status|pack|import --domain D` and `dossier search --domain D "query"`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from typing import Any

from cli import vectors_cmd
from core.errors import IndexError_

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction) -> None:
    index = commands.add_parser("index", help="build or inspect a domain's retrieval index")
    sub = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    build = sub.add_parser("build", help="embed and index the ingested corpus (runs ingest first if needed)")
    build.add_argument("--domain", required=True)
    build.add_argument("--if-missing", action="store_true", help="do nothing when a valid index exists")
    build.add_argument("--rebuild", action="store_true", help="a full build instead of an incremental update")
    build.add_argument("--threads", type=int, help="embedding threads for this build (default: domain.toml); a "
                       "one-off build on an idle machine may use every core, serving keeps the configured count")
    build.set_defaults(handler=_build)
    vectors_cmd.register(sub)
    status = sub.add_parser("status", help="show the versions of a domain's index")
    status.add_argument("--domain", required=True)
    status.set_defaults(handler=_status)

    search = commands.add_parser("search", help="retrieve passages for a query, with the score of every stage")
    search.add_argument("--domain", required=True)
    search.add_argument("query")
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--json", action="store_true", help="print the hits as JSON")
    search.add_argument("--stages", help="comma-separated subset of dense,bm25,rerank (default: domain.toml)")
    search.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                        help="metadata filter; repeat a key or write KEY=a|b for any of several values")
    search.set_defaults(handler=_search)


def _valid_index_exists(cfg: Any) -> bool:
    from core.paths import index_root
    from retrieval.store import IndexStore

    try:
        IndexStore(index_root(cfg.name)).open(None)
    except IndexError_ as err:
        log.warning("%s", err)
        return False
    return True


def _build(args: argparse.Namespace) -> int:
    from domains import load_domain
    from ingest.pipeline import open_chunk_store
    from rag.build_retrieval import build_index_builder

    cfg = load_domain(args.domain)
    if args.threads:
        cfg = dataclasses.replace(cfg, embedding=dataclasses.replace(cfg.embedding, threads=args.threads))
    if args.if_missing and _valid_index_exists(cfg):
        print(f"index for {cfg.name} exists; nothing to do (use --rebuild to rebuild)")
        return 0
    start = time.perf_counter()
    store = open_chunk_store(cfg)
    try:
        builder = build_index_builder(cfg)
        change = builder.build(store) if args.rebuild else builder.update(store)
    finally:
        store.close()
    took = time.perf_counter() - start
    kind = "full build" if change.full_build else "update"
    print(f"{cfg.name}: {kind} -> {change.version_dir} (+{len(change.added)} -{len(change.removed)} "
          f"~{len(change.changed)} chunks) in {took:.1f}s {dict(change.stats)}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from core.paths import index_root
    from domains import load_domain
    from retrieval.build_progress import read_progress
    from retrieval.manifest import IndexManifest
    from retrieval.store import IndexStore

    cfg = load_domain(args.domain)
    store = IndexStore(index_root(cfg.name))
    current = store.current()
    progress = read_progress(store.root)
    if progress:
        eta = f", ~{progress['eta_s'] / 60:.0f} min left" if progress.get("eta_s") else ""
        state = "running" if progress["running"] else "not running (killed? `dossier index build` resumes it)"
        print(f"{cfg.name}: a build is {state}: {progress['stage']} {progress['done']}/{progress['total']}{eta}")
    if not store.versions():
        print(f"{cfg.name}: no index under {store.root}")
        return 1
    for version in store.versions():
        m = IndexManifest.read(store.root / version)
        mark = "*" if version == current else " "
        print(f"{mark} {version}  {m.created}  {m.n_chunks} chunks  {m.index_kind}  {m.embedder.name} "
              f"dim={m.embedder.dim} {m.embedder.backend}/{m.embedder.precision}  parent={m.parent or '-'}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from domains import load_domain
    from rag.build_retrieval import build_retriever
    from retrieval.filters import parse_filter_args

    cfg = load_domain(args.domain)
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip()) if args.stages else None
    where = parse_filter_args(args.filter)
    retriever = build_retriever(cfg, stages=stages)
    result = retriever.retrieve([args.query], args.k, {k: list(v) for k, v in where.conditions} or None)[0]
    if args.json:
        print(json.dumps(_as_json(args.query, result), ensure_ascii=False, indent=2))
    else:
        _print_hits(result)
    return 0


def _as_json(query: str, result: Any) -> dict[str, Any]:
    hits = [
        {"rank": i, "chunk_id": h.chunk.chunk_id, "doc_id": h.chunk.doc_id, "title": h.chunk.title,
         "score": h.score, "retriever": h.retriever, "stage_scores": dict(h.stage_scores),
         "start": h.chunk.start, "end": h.chunk.end, "text": h.chunk.text, "metadata": dict(h.chunk.metadata)}
        for i, h in enumerate(result.hits, start=1)
    ]
    return {"query": query, "hits": hits, "timings_ms": dict(result.timings_ms)}


def _print_hits(result: Any) -> None:
    if not result.hits:
        print("no hits")
    for i, h in enumerate(result.hits, start=1):
        scores = "  ".join(f"{name}={value:.4f}" for name, value in h.stage_scores.items())
        print(f"{i:>2}. [{h.chunk.chunk_id}] doc={h.chunk.doc_id}  {h.chunk.title}")
        print(f"    {scores}")
        text = h.chunk.text.replace("\n", " ")
        print(f"    {text[:160]}{'…' if len(text) > 160 else ''}")
    timings = "  ".join(f"{k}={v:.1f}ms" for k, v in result.timings_ms.items())
    print(f"timings: {timings}")

