"""Retrieval benchmark: query latency per stage, FAISS in the search path vs bare, embedding throughput, build time.

    .venv/bin/python bench/bench_retrieval.py [--domain legal] [--queries 50] [--embed-n 64] [--skip-throughput]

Needs the domain's index (`dossier index build --domain legal`) for the latency parts; prints one table.
Medians and ratios are measured in the same run. Threads: OMP_NUM_THREADS / the domain's embedding.threads.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.build_retrieval import build_retriever  # noqa: E402
from core.errors import DossierError  # noqa: E402
from domains import load_domain  # noqa: E402
from domains.config import DomainConfig  # noqa: E402
from retrieval.embedders import SentenceTransformerEmbedder  # noqa: E402

ROWS: list[tuple[str, str]] = []


def row(name: str, value: str) -> None:
    ROWS.append((name, value))
    print(f"  {name:<52} {value}", flush=True)


def pct(values: list[float]) -> str:
    return f"p50 {np.percentile(values, 50):8.2f} ms   p95 {np.percentile(values, 95):8.2f} ms"


def queries_for(cfg: DomainConfig, n: int) -> list[str]:
    """Short user questions first (the retrieval / QA sets' query field), then longer case facts."""
    out: list[str] = []
    for spec in cfg.evalsets:
        if spec.kind not in ("retrieval", "qa") or not spec.query_field:
            continue
        with gzip.open(cfg.path(spec.path), "rt", encoding="utf-8") as fh:
            for line in fh:
                text = json.loads(line).get(spec.query_field)
                if isinstance(text, str) and text.strip():
                    out.append(text.strip()[:512])
                if len(out) >= n * (1 + len(out) // max(n, 1)) and len(out) >= n:
                    break
    rng = np.random.default_rng(0)
    return [out[i] for i in rng.permutation(len(out))[:n]]


def bench_latency(cfg: DomainConfig, queries: list[str]) -> None:
    stages = ["dense", "bm25"] + (["rerank"] if cfg.models.reranker else [])
    retriever = build_retriever(cfg, stages=stages)
    m = retriever.index.manifest
    row("index", f"{m.version}: {m.n_chunks} chunks, {m.index_kind}, {m.embedder.name} dim {m.embedder.dim}")
    retriever.search(queries[0], cfg.retrieval.final_k)  # warm-up
    per_stage: dict[str, list[float]] = {}
    totals: list[float] = []
    for q in queries:
        start = time.perf_counter()
        result = retriever.search(q, cfg.retrieval.final_k)
        totals.append((time.perf_counter() - start) * 1000)
        for stage, ms in result.timings_ms.items():
            per_stage.setdefault(stage, []).append(ms)
    for stage in ("dense_embed", "dense_search", "bm25", "fusion", "rerank", "docstore"):
        if stage in per_stage:
            row(f"latency {stage}", pct(per_stage[stage]))
    row("latency total (search)", pct(totals))
    bench_faiss_overhead(retriever, queries)
    build = m.stats
    if build:
        row("index build (from manifest)", f"tokenize {build.get('tokenize_s')} s, embed {build.get('embed_s')} s "
            f"({build.get('embedded_chunks')} chunks), write {build.get('write_s')} s")


def bench_faiss_overhead(retriever: object, queries: list[str], repeats: int = 5) -> None:
    """FaissIndex.search as the retriever calls it vs faiss.Index.search on a separately read copy."""
    import faiss

    from retrieval.index_files import FAISS_FILE

    index = retriever.index  # type: ignore[attr-defined]
    bare = faiss.read_index(str(index.directory / FAISS_FILE))
    vectors = retriever.embedder.embed(queries, role="query")  # type: ignore[attr-defined]
    k = retriever.cfg.dense_k  # type: ignore[attr-defined]
    ours, theirs = [], []
    for _ in range(repeats):
        for v in vectors:
            q = v[None, :]
            start = time.perf_counter()
            bare.search(q, k)
            theirs.append(time.perf_counter() - start)
            start = time.perf_counter()
            index.dense.search(q, k)
            ours.append(time.perf_counter() - start)
    a, b = np.median(ours) * 1000, np.median(theirs) * 1000
    row("FAISS search: dossier path vs bare (median)", f"{a:.3f} ms vs {b:.3f} ms  ratio {a / b:.2f}x (goal <= 1.2x)")


def bench_throughput(cfg: DomainConfig, n: int) -> None:
    from core.paths import ingest_dir
    from ingest.store import ChunkStore

    path = ingest_dir(cfg.name) / "chunks.sqlite"
    if not path.is_file():
        row("embedding throughput", "skipped: no ingested corpus")
        return
    with ChunkStore(path) as store:
        texts = [c.text for _, c in zip(range(4000), store.chunks(), strict=False)]
    texts = [texts[i] for i in np.random.default_rng(1).permutation(len(texts))[:n]]
    row("throughput sample", f"{len(texts)} chunks, mean {np.mean([len(t) for t in texts]):.0f} chars")
    for backend, precision in (("torch", "fp32"), ("torch", "bf16"), ("onnx", "fp32")):
        emb_cfg = replace(cfg.embedding, backend=backend, precision=precision)
        try:
            embedder = SentenceTransformerEmbedder(cfg.models.embedder, emb_cfg, show_progress=False).load()
        except Exception as err:  # noqa: BLE001 - a backend that cannot load is a reported figure, not a crash
            row(f"embed {backend}/{precision}", f"failed: {type(err).__name__}: {str(err)[:120]}")
            continue
        embedder.embed(texts[:4])
        start = time.perf_counter()
        embedder.embed(texts)
        took = time.perf_counter() - start
        row(f"embed {backend}/{precision} ({emb_cfg.threads} thread)", f"{len(texts) / took:7.1f} chunks/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default="legal")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--embed-n", type=int, default=64)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cfg = load_domain(args.domain)
    print(f"bench_retrieval: domain {cfg.name}, embedder {cfg.models.embedder} ({cfg.embedding.backend}/"
          f"{cfg.embedding.precision}), index {cfg.retrieval.index}, stages {list(cfg.retrieval.stages)}")
    if not args.skip_latency:
        try:
            bench_latency(cfg, queries_for(cfg, args.queries))
        except DossierError as err:
            row("latency", f"skipped: {err}")
    if not args.skip_throughput:
        bench_throughput(cfg, args.embed_n)
    print("\n| measure | figure |\n|---|---|")
    for name, value in ROWS:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
