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

from core.errors import DossierError  # noqa: E402
from core.stages import FIRST_STAGES, Stage  # noqa: E402
from domains import load_domain  # noqa: E402
from domains.config import DomainConfig  # noqa: E402
from rag.build_retrieval import build_retriever  # noqa: E402
from retrieval.embedders import SentenceTransformerEmbedder  # noqa: E402

ROWS: list[tuple[str, str]] = []


def row(name: str, value: str) -> None:
    ROWS.append((name, value))
    print(f"  {name:<52} {value}", flush=True)


def pct(values: list[float]) -> str:
    return f"p50 {np.percentile(values, 50):8.2f} ms   p95 {np.percentile(values, 95):8.2f} ms"


def queries_for(cfg: DomainConfig, n: int) -> list[str]:
    """n queries sampled from the first n of each retrieval / QA eval set (user questions and case facts)."""
    out: list[str] = []
    for spec in cfg.evalsets:
        if spec.kind not in ("retrieval", "qa") or not spec.query_field:
            continue
        taken = 0
        with gzip.open(cfg.path(spec.path), "rt", encoding="utf-8") as fh:
            for line in fh:
                text = json.loads(line).get(spec.query_field)
                if isinstance(text, str) and text.strip() and taken < n:
                    out.append(text.strip()[:512])
                    taken += 1
    rng = np.random.default_rng(0)
    return [out[i] for i in rng.permutation(len(out))[:n]]


class HashProxyEmbedder:
    """Character bigrams hashed into `dim` dims: a stand-in with the real embedder's dimension, so FAISS, BM25, fusion
    and docstore timings are those of the real index size while the embedder itself is timed separately."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim, self.precision, self.backend = name, dim, "fp32", "torch"

    def load(self) -> HashProxyEmbedder:
        return self

    def embed(self, texts: list[str], role: str = "document") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for a, b in zip(text, text[1:], strict=False):
                out[i, hash(a + b) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def proxy_retriever(cfg: DomainConfig, out: Path) -> object:
    """A full-size index of the domain's ingested chunks with proxy vectors; returns a loaded HybridRetriever."""
    from core.paths import ingest_dir
    from ingest.store import ChunkStore
    from rag.build_retrieval import build_faiss_spec, build_tokenizer
    from retrieval.hybrid import HybridRetriever
    from retrieval.index_build import IndexBuilder
    from retrieval.store import IndexStore
    from retrieval.vector_cache import VectorCache, document_identity

    embedder = HashProxyEmbedder("hash-proxy", 768)
    cache = VectorCache.for_identity(out / "vectors", document_identity(embedder), embedder.dim)
    builder = IndexBuilder(cfg.name, IndexStore(out), embedder, build_tokenizer(cfg), build_faiss_spec(cfg),
                           vector_cache=cache)
    start = time.perf_counter()
    with ChunkStore(ingest_dir(cfg.name) / "chunks.sqlite") as source:
        change = builder.build(source)
    row("proxy index build (tokenize + write, no embedding)",
        f"{time.perf_counter() - start:.1f} s for {len(change.added)} chunks {dict(change.stats)}")
    return HybridRetriever(cfg.retrieval, index_location=out, embedder=embedder, tokenizer=build_tokenizer(cfg),
                           faiss_spec=build_faiss_spec(cfg), stages=FIRST_STAGES).load()


def bench_query_embedding(cfg: DomainConfig, queries: list[str]) -> None:
    embedder = SentenceTransformerEmbedder(cfg.models.embedder, cfg.embedding, show_progress=False).load()
    embedder.embed(queries[:1], role="query")
    times = []
    for q in queries:
        start = time.perf_counter()
        embedder.embed([q], role="query")
        times.append((time.perf_counter() - start) * 1000)
    row(f"latency dense_embed ({cfg.models.embedder}, real)", pct(times))


def bench_latency(cfg: DomainConfig, queries: list[str], proxy: bool) -> None:
    stages = [*FIRST_STAGES, *([Stage.RERANK] if cfg.models.reranker else [])]
    if proxy:
        import tempfile

        retriever = proxy_retriever(cfg, Path(tempfile.mkdtemp(prefix="bench-proxy-")) / "index")
        bench_query_embedding(cfg, queries)
    else:
        retriever = build_retriever(cfg, stages=stages)
    m = retriever.index.manifest
    row("index", f"{m.version}: {m.n_chunks} chunks, {m.index_kind}, {m.embedder.name} dim {m.embedder.dim}")
    retriever.retrieve([queries[0]], cfg.retrieval.final_k)  # warm-up
    per_stage: dict[str, list[float]] = {}
    totals: list[float] = []
    for q in queries:
        start = time.perf_counter()
        result = retriever.retrieve([q], cfg.retrieval.final_k)[0]
        totals.append((time.perf_counter() - start) * 1000)
        for stage, ms in result.timings_ms.items():
            per_stage.setdefault(stage, []).append(ms)
    for stage in ("dense_embed", "dense_search", "hub", "bank", "scope", "scope_router", "bm25", "article", "fusion",
                  "rerank", "docstore", "coverage"):
        if stage in per_stage and not (proxy and stage == "dense_embed"):
            row(f"latency {stage}", pct(per_stage[stage]))
    row("latency total (search)", pct(totals))
    bench_faiss_overhead(retriever, queries)
    build = m.stats
    if build:
        row("index build (from manifest)", f"tokenize {build.get('tokenize_s')} s, embed {build.get('embed_s')} s "
            f"({build.get('embedded')} chunks), write {build.get('write_s')} s")


def bench_faiss_overhead(retriever: object, queries: list[str], repeats: int = 5) -> None:
    """FaissIndex.search as the retriever calls it vs faiss.Index.search on a separately read copy."""
    import faiss

    from retrieval.index_files import FAISS_FILE

    index = retriever.index  # type: ignore[attr-defined]
    bare = faiss.read_index(str(index.directory / FAISS_FILE))
    vectors = retriever.embedder.embed(queries, role="query")  # type: ignore[attr-defined]
    k = retriever.cfg.dense_k  # type: ignore[attr-defined]
    ours, theirs = [], []
    calls = [(bare.search, theirs), (index.dense.search, ours)]
    for _ in range(repeats):
        for v in vectors:
            q = v[None, :]
            calls.reverse()  # alternate who goes first: the second call of a pair runs on a warmer machine
            for search, times in calls:
                start = time.perf_counter()
                search(q, k)
                times.append(time.perf_counter() - start)
    a, b = np.median(ours) * 1000, np.median(theirs) * 1000
    row("FAISS search: dossier path vs bare (median)", f"{a:.3f} ms vs {b:.3f} ms  ratio {a / b:.2f}x (goal <= 1.2x)")


def bench_throughput(cfg: DomainConfig, n: int, backends: list[str]) -> None:
    from core.paths import ingest_dir
    from ingest.store import ChunkStore

    path = ingest_dir(cfg.name) / "chunks.sqlite"
    if not path.is_file():
        row("embedding throughput", "skipped: no ingested corpus")
        return
    with ChunkStore(path) as store:
        n_chunks = len(store)
        texts = [c.text for c in store.chunks()]
    texts = [texts[i] for i in np.random.default_rng(1).permutation(len(texts))[:n]]  # a uniform sample
    row("throughput sample", f"{len(texts)} chunks, mean {np.mean([len(t) for t in texts]):.0f} chars")
    for backend, precision in (b.split("/") for b in backends):
        emb_cfg = replace(cfg.embedding, backend=backend, precision=precision)
        try:
            embedder = SentenceTransformerEmbedder(cfg.models.embedder, emb_cfg, show_progress=False).load()
        except Exception as err:  # noqa: BLE001 - a backend that cannot load is a reported figure, not a crash
            row(f"embed {backend}/{precision}", f"failed: {type(err).__name__}: {str(err)[:120]}")
            continue
        embedder.embed(texts[:4])
        start, cpu = time.perf_counter(), time.process_time()
        embedder.embed(texts)
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
        # CPU seconds do not grow when other jobs share the cores: chunks per CPU-second ~ an idle core's speed
        row(f"embed {backend}/{precision} ({emb_cfg.threads} thread)",
            f"{len(texts) / took:7.2f} chunks/s wall, {len(texts) / cpu:7.2f} chunks per CPU-s"
            f" (idle 1-thread build of {n_chunks} chunks ~ {n_chunks * cpu / len(texts) / 60:.0f} min)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default="legal")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--embed-n", type=int, default=64)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--backends", default="torch/fp32,torch/bf16,onnx/fp32", help="backend/precision list")
    parser.add_argument("--proxy-index", action="store_true",
                        help="time FAISS/BM25/fusion on a full-size index with stand-in vectors (no hour-long build); "
                             "the real embedder's query latency is timed separately")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cfg = load_domain(args.domain)
    print(f"bench_retrieval: domain {cfg.name}, embedder {cfg.models.embedder} ({cfg.embedding.backend}/"
          f"{cfg.embedding.precision}), index {cfg.retrieval.index}, stages {list(cfg.retrieval.stages)}")
    if not args.skip_latency:
        try:
            bench_latency(cfg, queries_for(cfg, args.queries), args.proxy_index)
        except DossierError as err:
            row("latency", f"skipped: {err}")
    if not args.skip_throughput:
        bench_throughput(cfg, args.embed_n, args.backends.split(","))
    print("\n| measure | figure |\n|---|---|")
    for name, value in ROWS:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
