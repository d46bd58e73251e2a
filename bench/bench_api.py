"""Benchmark of the answering service on this machine (figures printed, medians measured in one run).

1. /v1/ask over a real uvicorn server on loopback with the legal domain's own pipeline (its embedder, fusion and
   generation backend, llama-cpp by default): p50 / p95 of first token and full answer (SSE stream).
2. /v1/search: retrieval-only QPS with a concurrent client.
3. Generation speed of each CPU backend on the same model (Qwen2.5-Coder-0.5B: the GGUF, and the bf16 dir
   converted from it), as a ratio to raw llama.cpp (llama-cpp-python's own API) measured in the same run,
   round-robin so load changes hit every backend alike.

Run: DOSSIER_CACHE_DIR=.cache OMP_NUM_THREADS=1 .venv/bin/python bench/bench_api.py [--quick]
Uses the domain's index under DOSSIER_HOME when one exists, else builds one over the Criminal Law (505 articles)
under <DOSSIER_HOME>/domains/legal/bench-slice with the domain's embedder (kept for the next run).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

QUESTIONS = [
    "故意杀人罪判几年？", "盗窃公私财物数额较大的，怎么处罚？", "抢劫罪的法定刑是什么？", "醉酒驾驶机动车构成什么罪？",
    "贪污罪的处罚标准是什么？", "正当防卫的条件是什么？", "受贿罪如何定罪处罚？", "诈骗公私财物数额较大的怎么处罚？",
]


TRACES: list[dict] = []  # the traces of the last ask_latency run
CPU_FIRST: list[float] = []  # CPU seconds to the first token (server and client share this process)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def legal_pipeline(args: argparse.Namespace):
    from slice_index import build_slice_index, legal_slice

    from core.errors import IndexError_
    from core.paths import domain_workspace
    from domains import load_domain
    from rag.build import build_pipeline
    from rag.build_retrieval import build_retriever

    cfg = load_domain("legal")
    generation = replace(cfg.generation, max_new_tokens=args.max_new_tokens,
                         context_chars=args.context_chars or cfg.generation.context_chars,
                         backend=args.backend or cfg.generation.backend,
                         threads=args.threads or cfg.generation.threads,
                         prefill_threads=args.prefill_threads or cfg.generation.prefill_threads)
    cfg = replace(cfg, generation=generation)
    try:
        retriever = build_retriever(cfg)
        where = "the domain index"
    except IndexError_:
        workdir = domain_workspace("legal") / "bench-slice"  # kept between runs: the build is minutes
        if not (workdir / "index" / "current").exists():
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
            build_slice_index(cfg, legal_slice(), workdir)
        retriever, where = build_retriever(cfg, index_dir=workdir / "index"), "a Criminal Law index (505 articles)"
    gen = cfg.generation
    print(f"retrieval: {cfg.models.embedder} over {where}; generator {cfg.models.generator} ({gen.backend}, "
          f"{gen.threads} decode / {gen.prefill_threads or gen.threads} prompt thread(s)), max_new_tokens "
          f"{args.max_new_tokens}, context_chars {gen.context_chars}")
    return build_pipeline(cfg, retriever=retriever)


def ask_latency(url: str, questions: list[str]) -> tuple[list[float], list[float], int]:
    firsts, fulls, abstained = [], [], 0
    TRACES.clear()
    CPU_FIRST.clear()
    for q in questions:
        t0, first, c0 = time.perf_counter(), None, time.process_time()
        with httpx.stream("POST", f"{url}/v1/ask", json={"domain": "legal", "question": q, "stream": True},
                          timeout=600) as r:
            for line in r.iter_lines():
                # the first token: the first delta (or the answer, when it abstained), not the evidence event
                if first is None and line.startswith(('data: {"delta"', 'data: {"answer"')):
                    first = time.perf_counter() - t0
                    CPU_FIRST.append(time.process_time() - c0)  # this process's CPU seconds: load-independent
                if line.startswith('data: {"answer"'):
                    answer = json.loads(line[5:])["answer"]
                    abstained += answer["abstained"]
                    TRACES.append(answer["trace"])
        fulls.append(time.perf_counter() - t0)
        firsts.append(first or fulls[-1])
    return firsts, fulls, abstained


def search_qps(url: str, total: int, concurrency: int) -> tuple[float, list[float]]:
    client = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=concurrency))
    latencies: list[float] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        t0 = time.perf_counter()
        r = client.post(f"{url}/v1/search", json={"domain": "legal", "query": QUESTIONS[i % len(QUESTIONS)], "k": 5})
        r.raise_for_status()
        with lock:
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(total)))
    return total / (time.perf_counter() - t0), latencies


def service_figures(args: argparse.Namespace) -> None:
    from live_server import LiveServer

    from api import create_app

    pipeline = legal_pipeline(args)
    app = create_app(["legal"], build=lambda _: pipeline, api_keys=[])
    with LiveServer(app) as server:
        ask_latency(server.url, QUESTIONS[:1])  # warm-up
        firsts, fulls, abstained = ask_latency(server.url, QUESTIONS[: args.questions])
        print(f"/v1/ask (n={len(fulls)}, {abstained} abstained): first token p50 {pct(firsts, 50):.2f} s, "
              f"p95 {pct(firsts, 95):.2f} s; full answer p50 {pct(fulls, 50):.2f} s, p95 {pct(fulls, 95):.2f} s")
        retrieve = [t["timings_ms"]["retrieve"] for t in TRACES]
        chars = [t["prompt_chars"] for t in TRACES]
        print(f"  of which retrieval p50 {pct(retrieve, 50):.0f} ms; prompt p50 {pct(chars, 50)} chars; "
              f"CPU time to first token p50 {pct(CPU_FIRST, 50):.2f} s (all threads of this process)")
        qps, lat = search_qps(server.url, args.search_requests, args.concurrency)
        print(f"/v1/search: {qps:.1f} QPS with {args.concurrency} concurrent clients "
              f"(latency p50 {pct(lat, 50) * 1000:.0f} ms, p95 {pct(lat, 95) * 1000:.0f} ms, n={len(lat)})")


if __name__ == "__main__":
    from bench_api_generation import generation_figures

    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer questions and repetitions")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--context-chars", type=int, default=0, help="evidence budget (default: domain.toml)")
    parser.add_argument("--backend", default="", help="generation backend for /v1/ask (default: domain.toml)")
    parser.add_argument("--threads", type=int, default=0, help="generation (decode) threads (default: domain.toml)")
    parser.add_argument("--prefill-threads", type=int, default=0, help="llama-cpp prompt threads")
    parser.add_argument("--search-requests", type=int, default=80)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3, help="round-robin repetitions per generation backend")
    parser.add_argument("--gen-tokens", type=int, default=96)
    parser.add_argument("--skip-service", action="store_true")
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--vllm", action="store_true", help="also time vLLM's server from .venv-vllm")
    parser.add_argument("--fp32", action="store_true", help="also time transformers in fp32")
    args = parser.parse_args()
    if args.quick:
        args.questions, args.reps, args.search_requests = 3, 1, 30
    if not args.skip_service:
        service_figures(args)
    if not args.skip_generation:
        generation_figures(args)
