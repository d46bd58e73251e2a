"""`dossier index pack --domain D` (write the domain's shipped vector pack) and `dossier index import DIR` (seed the
vector cache from an index version built earlier)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    pack = sub.add_parser("pack", help="write the domain's vector pack (domains/<d>/vectors/) from its corpus; "
                          "vectors come from the cache, the rest are embedded")
    pack.add_argument("--domain", required=True)
    pack.add_argument("--out", type=Path, help="pack folder (default: the domain's vectors/ folder)")
    pack.add_argument("--threads", type=int, help="embedding threads for the chunks the cache lacks")
    pack.set_defaults(handler=_pack)
    seed = sub.add_parser("import", help="put the vectors of an index version built earlier into the vector cache "
                          "(checked by re-embedding a sample)")
    seed.add_argument("--domain", required=True, help="whose embedder checks and owns the vectors")
    seed.add_argument("version_dir", type=Path, nargs="+", help="index version folder(s), e.g. .../index/v0001")
    seed.set_defaults(handler=_import)


def _pack(args: argparse.Namespace) -> int:
    import dataclasses

    from core.hashing import sha256_file
    from domains import load_domain
    from ingest.pipeline import open_chunk_store
    from rag.build_retrieval import build_index_builder
    from retrieval.vector_cache import text_key
    from retrieval.vector_pack import PACK_DIR, write_pack

    cfg = load_domain(args.domain)
    if args.threads:
        cfg = dataclasses.replace(cfg, embedding=dataclasses.replace(cfg.embedding, threads=args.threads))
    builder = build_index_builder(cfg, use_pack=False)
    store = open_chunk_store(cfg)
    try:
        texts = list(dict.fromkeys(c.text for c in store.chunks()))
    finally:
        store.close()
    vectors = builder.vectors.vectors_for(texts, builder.progress.update)
    builder.progress.finish()
    out = args.out or cfg.root / PACK_DIR
    corpus = {s.path: sha256_file(cfg.path(s.path)) for s in cfg.corpus}
    write_pack(out, [text_key(t) for t in texts], vectors, identity=builder.vectors.cache.identity,
               embedder=builder.embedder.name,
               extra={"domain": cfg.name, "command": f"dossier index pack --domain {cfg.name}", "corpus": corpus,
                      "sources": dict(builder.vectors.stats)})
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"{cfg.name}: vector pack of {len(texts)} chunks -> {out} ({size / 1e6:.1f} MB; "
          f"{builder.vectors.stats['embedded']} embedded now, {builder.vectors.stats['from_cache']} from the cache)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from domains import load_domain
    from rag.build_retrieval import build_embedder, open_vector_cache
    from retrieval.vector_import import import_index

    embedder = build_embedder(load_domain(args.domain), show_progress=False).load()
    cache = open_vector_cache(embedder)
    for version_dir in args.version_dir:
        added = import_index(version_dir, cache, embedder)
        print(f"{version_dir}: {added} new vectors (the cache now holds {len(cache)})")
    return 0
