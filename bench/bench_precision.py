"""Precision benchmark: what this CPU offers, what precision = "auto" picks, and EmbeddingGemma in fp32 vs bf16.

    DOSSIER_CACHE_DIR=.cache nice .venv/bin/python bench/bench_precision.py [--queries 40] [--rounds 3]

Query latency: one user question at a time (the legal domain's consultation questions), role "query", p50 / p95.
Document throughput: 64 Criminal Law articles (cut at the chunker's 512 characters) in one `embed` call, chunks per
wall second and per CPU second (CPU seconds do not grow when other jobs share the cores). One torch thread. Both
precisions are loaded side by side and timed in alternation, so a background job slows both alike; every figure and
ratio comes from this one run. Prints one table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import hardware  # noqa: E402
from domains import load_domain  # noqa: E402
from domains.config import EmbeddingConfig  # noqa: E402
from retrieval.embedders import SentenceTransformerEmbedder  # noqa: E402

PRECISIONS = ("fp32", "bf16")
SHOWN_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_model() -> str:
    try:
        text = hardware.CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    names = [line.partition(":")[2].strip() for line in text.splitlines() if line.startswith("model name")]
    return f"{names[0]} ({len(names)} logical CPUs)" if names else "unknown"


def print_machine() -> str:
    """Prints what was detected; returns the precision "auto" picks on the CPU."""
    flags = hardware.cpu_flags()
    auto = hardware.precision_choice("auto", "cpu")
    print(f"cpu             {cpu_model()}")
    shown = " ".join(f"{flag}:{'yes' if flag in flags else 'no'}" for flag in SHOWN_FLAGS)
    print(f"flags           {shown}")
    print(f"torch kernels   {hardware.torch_cpu_capability()}")
    print(f"native bf16     {hardware.cpu_has_native_bf16()}")
    print(f"auto picks      {auto.value} on the CPU ({auto.reason}); device auto -> "
          f"{hardware.device_choice('auto').value}")
    return auto.value


def questions(n: int) -> list[str]:
    cfg = load_domain("legal")
    spec = cfg.evalset("lawbench_consultation")
    with gzip.open(cfg.path(spec.path), "rt", encoding="utf-8") as fh:
        rows = [json.loads(line)[spec.query_field] for line in fh]
    return [q.strip() for q in rows if isinstance(q, str) and q.strip()][:n]


def statute_chunks(n: int) -> list[str]:
    path = load_domain("legal").path("data/corpus/criminal_law_articles.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"][:512] for line in fh]
    return [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[:n]]  # a fixed uniform sample


def load(model: str, precision: str) -> SentenceTransformerEmbedder:
    # CPU on purpose: this bench compares what the CPU does with each precision, on a GPU machine too
    cfg = EmbeddingConfig(precision=precision, device="cpu", threads=1)
    return SentenceTransformerEmbedder(model, cfg, show_progress=False).load()


def measure(embedders: dict[str, SentenceTransformerEmbedder], queries: list[str], chunks: list[str],
            rounds: int) -> dict[str, dict[str, float]]:
    """Per precision: query p50 / p95 (ms), median chunks per wall second and per CPU second."""
    latency: dict[str, list[float]] = {p: [] for p in embedders}
    wall: dict[str, list[float]] = {p: [] for p in embedders}
    cpu: dict[str, list[float]] = {p: [] for p in embedders}
    for embedder in embedders.values():  # warm-up: first calls allocate and pick kernels
        embedder.embed(queries[:2], role="query")
        embedder.embed(chunks[:4])
    for query in queries:
        for precision, embedder in embedders.items():
            start = time.perf_counter()
            embedder.embed([query], role="query")
            latency[precision].append((time.perf_counter() - start) * 1000)
    for _ in range(rounds):
        for precision, embedder in embedders.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            embedder.embed(chunks)
            wall[precision].append(len(chunks) / (time.perf_counter() - start))
            cpu[precision].append(len(chunks) / (time.process_time() - cpu_start))
    return {p: {"p50": float(np.percentile(latency[p], 50)), "p95": float(np.percentile(latency[p], 95)),
                "wall": float(np.median(wall[p])), "cpu": float(np.median(cpu[p]))} for p in embedders}


def print_table(figures: dict[str, dict[str, float]], auto: str, n_queries: int, n_chunks: int, rounds: int) -> None:
    print("\n| precision | query p50 ms | query p95 ms | chunks/s (wall) | chunks per CPU-s |"
          "\n|---|---|---|---|---|")
    for precision, f in figures.items():
        name = f"{precision} (auto)" if precision == auto else precision
        print(f"| {name} | {f['p50']:.1f} | {f['p95']:.1f} | {f['wall']:.2f} | {f['cpu']:.2f} |")
    a, b = figures["fp32"], figures["bf16"]
    print(f"| bf16 speed-up over fp32 | {a['p50'] / b['p50']:.2f}x | {a['p95'] / b['p95']:.2f}x "
          f"| {b['wall'] / a['wall']:.2f}x | {b['cpu'] / a['cpu']:.2f}x |")
    print(f"\n{n_queries} single queries per precision; {n_chunks} statute chunks per call, median of {rounds} calls; "
          "1 torch thread; fp32 and bf16 timed in alternation in this run.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embeddinggemma-300m")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"bench_precision: {args.model}")
    auto = print_machine()
    queries, chunks = questions(args.queries), statute_chunks(args.chunks)
    embedders = {p: load(args.model, p) for p in PRECISIONS}
    figures = measure(embedders, queries, chunks, args.rounds)
    print_table(figures, auto, len(queries), len(chunks), args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
