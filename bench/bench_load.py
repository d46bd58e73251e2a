"""Load on loopback: 1,000 POST /v1/search at concurrency 8, then 100 POST /v1/ask at concurrency 4, against the app
`dossier serve` runs (`api.app.create_app` over the legal domain's own pipeline: its embedder, index and generator),
served by uvicorn in a child process on 127.0.0.1. Prints errors (must be 0), p50 / p95 latency, throughput, and the
server's RSS before a phase and after each quarter of it (memory must be stable: it may level off after the first
requests, not keep climbing); exits 1 when either fails.

The questions are the first ones of the domain's `lawbench_consultation` set (real users' questions). No rate limit
(`dossier serve` allows one client 120 requests a minute: this measures the service, not the limiter); the answer
deadline is serve's. Asks take turns on the one llama.cpp context, so when the warm-up ask says `--asks` would take
longer than `--ask-budget-min`, 40 are sent instead, and the table says so.

Run: DOSSIER_CACHE_DIR=.cache OMP_NUM_THREADS=1 .venv/bin/python bench/bench_load.py [--searches 1000] [--asks 100]
     [--index-dir DIR | --slice]
The domain's index under DOSSIER_HOME when it has one; else (or with --slice) a MiniLM index over the 505 Criminal
Law articles (tests/slice_index.py) built in a temporary folder, as the output says. Traffic goes to 127.0.0.1 only;
the server stops when the bench ends, and by itself if the bench process dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
FALLBACK_ASKS = 40
RSS_SLICES = 4
RSS_GROWTH_LIMIT_MIB = 100.0  # more than this over a phase (after warm-up) is not "stable"
RSS_LATE_GROWTH_LIMIT_MIB = 32.0  # nor is still climbing this much over its second half


@dataclass
class LoadResult:
    """One phase: every request's latency in seconds, failures (an exception or a status other than 200)."""

    path: str
    concurrency: int
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def n(self) -> int:
        return len(self.latencies_s)

    def pct_ms(self, p: float) -> float:
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0

    @property
    def throughput(self) -> float:
        return self.n / self.wall_s if self.wall_s else 0.0


async def _drive(url: str, path: str, bodies: list[dict], concurrency: int, timeout_s: float) -> LoadResult:
    result = LoadResult(path, concurrency)
    pending = iter(bodies)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:

        async def worker() -> None:
            for body in pending:  # workers share one iterator: each request is sent once
                t0 = time.perf_counter()
                try:
                    response = await client.post(path, json=body)
                    failed = None if response.status_code == 200 else f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as err:
                    failed = f"{type(err).__name__}: {err}"
                result.latencies_s.append(time.perf_counter() - t0)
                if failed:
                    result.errors += 1
                    result.error_samples = (result.error_samples + [failed])[:5]

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.wall_s = time.perf_counter() - t0
    return result


def run_load(url: str, path: str, bodies: list[dict], concurrency: int, timeout_s: float = 600.0) -> LoadResult:
    """POST every body to `url + path`, `concurrency` at a time (httpx async). Loopback only."""
    if urlsplit(url).hostname != "127.0.0.1":
        raise ValueError(f"the load bench sends traffic to 127.0.0.1 only, not {url}")
    return asyncio.run(_drive(url, path, bodies, concurrency, timeout_s))


def rss_mib(pid: int) -> float:
    """Resident memory of process `pid` in MiB (psutil, else /proc/<pid>/status VmRSS)."""
    try:
        import psutil
    except ImportError:
        status = Path(f"/proc/{pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kib) / 1024
    return psutil.Process(pid).memory_info().rss / 2**20


def questions(count: int) -> list[str]:
    from domains import load_domain
    from eval.evalsets import load_evalset

    records = load_evalset(load_domain("legal"), "lawbench_consultation", require_gold=False).records
    return [records[i % len(records)].query for i in range(count)]


# --- the server (child process) ---------------------------------------------------------------------------------

def _pipeline(args: argparse.Namespace, workdir: Path):
    sys.path.insert(0, str(ROOT / "tests"))
    from core.errors import IndexError_
    from domains import load_domain
    from rag.build import build_pipeline
    from rag.build_retrieval import build_retriever

    cfg = load_domain("legal")
    if not args.slice:
        try:
            retriever = build_retriever(cfg, index_dir=args.index_dir)
            return build_pipeline(cfg, retriever=retriever), f"{cfg.models.embedder} over the domain index"
        except IndexError_ as err:
            logging.warning("no domain index (%s): serving a MiniLM slice instead", err)
    from slice_index import build_slice_index, legal_slice, minilm_cfg

    cfg = minilm_cfg(cfg)
    retriever = build_retriever(cfg, index_dir=build_slice_index(cfg, legal_slice(), workdir))
    return build_pipeline(cfg, retriever=retriever), "all-minilm-l6-v2 over a Criminal Law slice index (505 articles)"


def serve(args: argparse.Namespace) -> None:
    """Build the pipeline, bind 127.0.0.1 on a free port, write {port, retrieval} to `args.ready_file`, serve."""
    import socket

    import uvicorn

    from api import create_app
    from api.limits import Limits

    parent = os.getppid()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        pipeline, retrieval = _pipeline(args, Path(tmp))
        app = create_app(["legal"], build=lambda _: pipeline, api_keys=[], limits=Limits())
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))

        def orphaned() -> None:  # the bench died without stopping us: stop too
            while not server.should_exit:
                if os.getppid() != parent:
                    server.should_exit = True
                time.sleep(1)

        threading.Thread(target=orphaned, daemon=True).start()
        Path(args.ready_file).write_text(json.dumps({"port": sock.getsockname()[1], "retrieval": retrieval,
                                                     "generator": pipeline.generator.name}))
        server.run(sockets=[sock])


# --- the bench (parent process) ---------------------------------------------------------------------------------

def start_server(args: argparse.Namespace, ready_file: Path) -> tuple[subprocess.Popen, dict]:
    command = [sys.executable, __file__, "--serve", "--ready-file", str(ready_file)]
    command += ["--slice"] if args.slice else (["--index-dir", str(args.index_dir)] if args.index_dir else [])
    child = subprocess.Popen(command, cwd=ROOT)
    deadline = time.monotonic() + args.start_timeout_s
    while time.monotonic() < deadline and child.poll() is None:
        if ready_file.is_file():
            info = json.loads(ready_file.read_text())
            try:
                if httpx.get(f"http://127.0.0.1:{info['port']}/readyz", timeout=5).status_code == 200:
                    return child, info
            except httpx.HTTPError:
                pass
        time.sleep(1)
    stop_server(child)
    raise RuntimeError("the server did not become ready (exited, or --start-timeout-s passed)")


def stop_server(child: subprocess.Popen) -> None:
    """SIGTERM (uvicorn shuts down gracefully), SIGKILL after 30 s (a no-op once the child has exited)."""
    child.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=30)
    child.kill()
    child.wait()


def phase(url: str, pid: int, path: str, bodies: list[dict], concurrency: int) -> tuple[LoadResult, list[float]]:
    """The bodies in RSS_SLICES equal slices, the server's RSS read before and after each: a leak keeps climbing to
    the end, a warm-up levels off."""
    result, series = LoadResult(path, concurrency), [rss_mib(pid)]
    size = -(-len(bodies) // RSS_SLICES)  # ceil
    for start in range(0, len(bodies), size):
        part = run_load(url, path, bodies[start : start + size], concurrency)
        result.latencies_s += part.latencies_s
        result.errors += part.errors
        result.error_samples = (result.error_samples + part.error_samples)[:5]
        result.wall_s += part.wall_s
        series.append(rss_mib(pid))
    return result, series


def table(rows: list[tuple[LoadResult, list[float]]], note: str) -> str:
    lines = ["| phase | requests | concurrency | errors | p50 ms | p95 ms | req/s | wall s | "
             "server RSS MiB: before -> after each quarter |", "|---|---|---|---|---|---|---|---|---|"]
    for r, rss in rows:
        series = " -> ".join(f"{m:.0f}" for m in rss)
        lines.append(f"| POST {r.path} | {r.n} | {r.concurrency} | {r.errors} | {r.pct_ms(50):.0f} | "
                     f"{r.pct_ms(95):.0f} | {r.throughput:.2f} | {r.wall_s:.1f} | {series} |")
    return "\n".join(lines + ([note] if note else []))


def verdict(rows: list[tuple[LoadResult, list[float]]]) -> tuple[bool, str]:
    errors = sum(r.errors for r, _ in rows)
    growth = max(rss[-1] - rss[0] for _, rss in rows)
    late = max(rss[-1] - rss[len(rss) // 2] for _, rss in rows)
    stable = growth <= RSS_GROWTH_LIMIT_MIB and late <= RSS_LATE_GROWTH_LIMIT_MIB
    return errors == 0 and stable, (f"errors {errors}; RSS growth over a phase at most {growth:+.0f} MiB (limit "
                                    f"{RSS_GROWTH_LIMIT_MIB:g}), over its second half {late:+.0f} MiB (limit "
                                    f"{RSS_LATE_GROWTH_LIMIT_MIB:g}): memory {'stable' if stable else 'NOT stable'}")


def bench(args: argparse.Namespace) -> int:
    pool = questions(max(args.searches, args.asks))
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        child, info = start_server(args, Path(tmp) / "ready.json")
        try:
            url = f"http://127.0.0.1:{info['port']}"
            print(f"server pid {child.pid} at {url}: retrieval {info['retrieval']}; generator {info['generator']}",
                  flush=True)
            search = [{"domain": "legal", "query": q, "k": 5} for q in pool[: args.searches]]
            asks = [{"domain": "legal", "question": q} for q in pool[: args.asks]]
            run_load(url, "/v1/search", search[:16], args.search_concurrency)  # warm-up: caches, first allocations
            warm = run_load(url, "/v1/ask", asks[:1], 1)
            for sample in warm.error_samples:
                print(f"  warm-up ask error: {sample}")
            note = ""
            if warm.wall_s * len(asks) > args.ask_budget_min * 60 and len(asks) > FALLBACK_ASKS:
                note = (f"asks cut from {len(asks)} to {FALLBACK_ASKS}: the warm-up ask took {warm.wall_s:.0f} s, "
                        f"{len(asks)} would pass the {args.ask_budget_min:g}-minute budget")
                asks = asks[:FALLBACK_ASKS]
            rows = []
            for path, bodies, concurrency in (("/v1/search", search, args.search_concurrency),
                                              ("/v1/ask", asks, args.ask_concurrency)):
                if bodies:
                    print(f"POST {path}: {len(bodies)} requests at concurrency {concurrency}", flush=True)
                    rows.append(phase(url, child.pid, path, bodies, concurrency))
                    for sample in rows[-1][0].error_samples:
                        print(f"  {path} error: {sample}")
        finally:
            stop_server(child)
    ok, summary = verdict(rows)
    print(table(rows, note))
    print(summary)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--search-concurrency", type=int, default=8)
    parser.add_argument("--asks", type=int, default=100)
    parser.add_argument("--ask-concurrency", type=int, default=4)
    parser.add_argument("--ask-budget-min", type=float, default=20.0, help="else send 40 asks")
    parser.add_argument("--index-dir", type=Path, default=None, help="serve this index (default: the domain's)")
    parser.add_argument("--slice", action="store_true", help="serve a MiniLM Criminal Law slice index")
    parser.add_argument("--start-timeout-s", type=float, default=1800.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--ready-file", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, str(ROOT))
    if args.serve:
        serve(args)
        return 0
    return bench(args)


if __name__ == "__main__":
    raise SystemExit(main())
