"""Embedding backends for a user's own documents: EmbeddingGemma through torch (fp32, bf16), ONNX Runtime (fp32,
int8 weights) and OpenVINO (the CPU's precision, int8 weights), for speed, agreement and recall.

    DOSSIER_CACHE_DIR=.cache nice .venv/bin/python bench/bench_embed_backends.py [--chunks 128] [--queries 30]
        [--rounds 2] [--recall-threads 1] [--domains legal,finance] [--no-recall]

Speed: the legal domain's embedder, one thread each, all backends loaded side by side and timed in alternation (so a
background job slows all alike): document throughput on 128 statutes_all chunks (cut at the chunker's 512
characters, a fixed uniform sample), chunks per wall second and per CPU second (`time.process_time`, which does not
grow when other jobs share the cores), median of the rounds; query p50 over 30 real consultation questions, one at
a time. Agreement: cosine of each backend's document vectors with torch fp32's (mean / min).
Recall@5 (dense alone, the test split) on the gold pools of legal CAIL fact -> article (508 chunks) and finance
FinCUGE FinQA (1,594): each backend embeds its own pool under a temporary DOSSIER_HOME (an empty vector cache).
Medical's pool (6,146 chunks) is left out: seven backends would embed it for hours on two cores.
"onnx-int8 all MatMuls" is the int8 recipe not shipped (down-projections quantised too), to show what it would cost.
OpenVINO rows need the `openvino` extra and are left out without it. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_precision import questions  # noqa: E402
from domains import load_domain  # noqa: E402
from domains.config import EmbeddingConfig  # noqa: E402
from retrieval.embedders import SentenceTransformerEmbedder  # noqa: E402

# label -> (backend, precision); "auto" is bf16 on a CPU with native bf16 (the OpenVINO rows compute in it there)
BACKENDS = {"torch fp32": ("torch", "fp32"), "torch bf16": ("torch", "bf16"), "onnx fp32": ("onnx", "auto"),
            "onnx-int8": ("onnx-int8", "auto"), "onnx-int8 all MatMuls": ("onnx-int8", "auto"),
            "openvino": ("openvino", "auto"), "openvino-int8": ("openvino-int8", "auto")}
# the recipe onnx-int8 does not ship (its MLP down-projections quantised too), kept here to show what it costs
ALL_MATMULS = "onnx-int8 all MatMuls"
REFERENCE, AGREEMENT = "torch bf16", "torch fp32"  # Δ recall against what the domains run here; cosine against fp32
GOLD_POOLS = {"legal": "cail2018_lawbench_fact2article", "finance": "fincuge_finqa"}


def available(label: str) -> bool:
    backend = BACKENDS[label][0]
    needs = {"openvino": ("openvino",), "openvino-int8": ("openvino", "nncf")}.get(backend, ())
    return all(importlib.util.find_spec(package) is not None for package in needs)


def statute_chunks(n: int) -> list[str]:
    path = load_domain("legal").path("data/corpus/statutes_all.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        texts = [t[:512] for t in (json.loads(line)["text"] for line in fh) if t.strip()]
    return [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[:n]]  # a fixed uniform sample


@contextlib.contextmanager
def recipe(label: str) -> Iterator[None]:
    """While an embedder of `label` loads (the int8 graph is made and opened at load): the all-MatMuls recipe."""
    if label != ALL_MATMULS:
        yield
        return
    from retrieval import onnx_embedding

    saved = onnx_embedding.INT8_FILE, onnx_embedding.down_projections
    onnx_embedding.INT8_FILE, onnx_embedding.down_projections = "model.int8.onnx", lambda _path: []
    try:
        yield
    finally:
        onnx_embedding.INT8_FILE, onnx_embedding.down_projections = saved


def load(model: str, label: str, threads: int) -> SentenceTransformerEmbedder:
    backend, precision = BACKENDS[label]
    # CPU on purpose: this bench compares what the CPU does with each precision, on a GPU machine too
    cfg = EmbeddingConfig(backend=backend, precision=precision, device="cpu", threads=threads)
    with recipe(label):
        return SentenceTransformerEmbedder(model, cfg, show_progress=False).load()


def speed(labels: list[str], args: argparse.Namespace) -> dict[str, dict]:
    """Per backend: p50 / p95 (ms), wall / cpu (median chunks per second), cos_mean / cos_min against torch fp32
    (the documents of the first round), precision."""
    model = load_domain("legal").models.embedder
    embedders = {label: load(model, label, threads=1) for label in labels}
    chunks, asked = statute_chunks(args.chunks), questions(args.queries)
    latency: dict[str, list[float]] = {label: [] for label in labels}
    rates: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
    vectors: dict[str, np.ndarray] = {}
    for embedder in embedders.values():  # warm-up: the first calls allocate and pick kernels
        embedder.embed(asked[:2], "query")
        embedder.embed(chunks[:4], "document")
    # in alternation: a query for each backend in turn, then a round of documents for each backend in turn
    for query in asked:
        for label, embedder in embedders.items():
            latency[label].append(1000 * timed(embedder.embed, [query], "query")[1])
    for _ in range(args.rounds):
        for label, embedder in embedders.items():
            out, wall_s, cpu_s = timed(embedder.embed, chunks, "document")
            vectors.setdefault(label, out)  # the first round's documents, for the agreement
            rates[label].append((len(chunks) / wall_s, len(chunks) / cpu_s))
    return {label: summary(latency[label], rates[label], vectors[label], vectors.get(AGREEMENT),
                           embedders[label].precision) for label in labels}


Embed = Callable[[list[str], str], np.ndarray]


def timed(embed: Embed, texts: list[str], role: str) -> tuple[np.ndarray, float, float]:
    """(vectors, wall seconds, CPU seconds of this process) of one embed call."""
    start, cpu_start = time.perf_counter(), time.process_time()
    out = embed(texts, role)
    return out, time.perf_counter() - start, time.process_time() - cpu_start


def summary(latency: list[float], rates: list[tuple[float, float]], vectors: np.ndarray,
            reference: np.ndarray | None, precision: str) -> dict:
    cosines = np.sum(vectors * reference, axis=1) if reference is not None else np.full(1, np.nan)
    wall, cpu = np.median(np.array(rates), axis=0)
    return {"p50": float(np.percentile(latency, 50)), "p95": float(np.percentile(latency, 95)), "wall": float(wall),
            "cpu": float(cpu), "cos_mean": float(cosines.mean()), "cos_min": float(cosines.min()),
            "precision": precision}


@contextlib.contextmanager
def own_vectors(path: Path) -> Iterator[Path]:
    """DOSSIER_HOME = `path` (an empty vector cache) and no shipped vector pack: every pool vector is embedded by
    the backend measured (a pack would serve the torch and onnx fp32 rows the torch build's int8 vectors)."""
    from functools import partial

    import rag.build_retrieval as build

    before, builder = os.environ.get("DOSSIER_HOME"), build.build_index_builder
    os.environ["DOSSIER_HOME"] = str(path)
    build.build_index_builder = partial(builder, use_pack=False)  # eval.eval_index imports it at call time
    try:
        yield path
    finally:
        build.build_index_builder = builder
        os.environ.pop("DOSSIER_HOME", None) if before is None else os.environ.__setitem__("DOSSIER_HOME", before)


def pool_recall(domain: str, label: str, threads: int, work: Path) -> tuple[float, int, str]:
    """Recall@5 of dense retrieval on the test split of the domain's gold pool, indexed by this backend;
    returns (recall, test questions, how the pool's vectors were made)."""
    from cli.eval_cmd import retriever_factory
    from eval.eval_index import build_eval_index
    from eval.evalsets import load_evalset
    from eval.retrieval_run import config_name, run_configs
    from retrieval.manifest import IndexManifest
    from retrieval.store import IndexStore

    backend, precision = BACKENDS[label]
    cfg = load_domain(domain)
    cfg = replace(cfg, embedding=replace(cfg.embedding, backend=backend, precision=precision, threads=threads))
    evalset = GOLD_POOLS[domain]
    with own_vectors(work / f"{domain}-{label.replace(' ', '-')}") as home, recipe(label):
        start = time.perf_counter()
        root = build_eval_index(cfg, evalset, home / "eval-index")
        seconds = time.perf_counter() - start
        store = IndexStore(root)
        stats = dict(IndexManifest.read(store.root / str(store.current())).stats)
        records = load_evalset(cfg, evalset, splits={"test"})
        run = run_configs(records, retriever_factory(cfg, root, {}), ("dense",), (5,),
                          config_name(cfg.retrieval.stages))
    how = f"{stats.get('embedded', '?')} embedded, {stats.get('from_pack', 0)} from a pack, {seconds:.0f} s"
    return float(run.results[0].metrics["recall@5"]), len(records.records), how


def recall(labels: list[str], domains: list[str], threads: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {label: {} for label in labels}
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
        for domain in domains:
            for label in labels:
                value, n, how = pool_recall(domain, label, threads, Path(tmp))
                out[label][domain] = value
                print(f"  {domain} ({GOLD_POOLS[domain]}, {n} test questions) {label}: R@5 {value:.3f} ({how})",
                      flush=True)
    return out


def print_table(labels: list[str], figures: dict[str, dict], recalls: dict[str, dict[str, float]],
                domains: list[str]) -> None:
    print("\n| backend | chunks/s | chunks per CPU-s | query p50 ms | cosine vs fp32 (mean/min) | legal R@5 "
          f"| finance R@5 | Δ R@5 vs {REFERENCE} |\n|---|---|---|---|---|---|---|---|")
    ref = recalls.get(REFERENCE, {})
    for label in labels:
        r = recalls.get(label, {})
        cells = [f"{r[d]:.3f}" if d in r else "—" for d in ("legal", "finance")]
        delta = " / ".join(f"{d} {100 * (r[d] - ref[d]):+.1f}" for d in domains if d in r and d in ref) or "—"
        f = figures.get(label)
        speed_cells = (f"{label} ({f['precision']}) | {f['wall']:.2f} | {f['cpu']:.2f} | {f['p50']:.0f} "
                       f"| {f['cos_mean']:.4f} / {f['cos_min']:.4f}") if f else f"{label} | — | — | — | —"
        print(f"| {speed_cells} | {cells[0]} | {cells[1]} | {delta} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=128)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--recall-threads", type=int, default=1, help="threads while the pools are embedded")
    parser.add_argument("--domains", default="legal,finance")
    parser.add_argument("--no-recall", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--backends", default="", help=f"comma-separated, of: {', '.join(BACKENDS)} (default all)")
    parser.add_argument("--recall-backends", default="", help="the backends whose recall is measured, in this "
                        "order (default --backends): the slow pools may not fit every backend")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    labels = chosen(args.backends)
    start = time.perf_counter()
    figures = {} if args.no_speed else speed(labels, args)
    if figures:  # printed at once: the recall below can take an hour
        print(f"speed measured in {time.perf_counter() - start:.0f} s", flush=True)
        print_table(labels, figures, {}, [])
    domains = [d.strip() for d in args.domains.split(",") if d.strip()]
    recall_labels = chosen(args.recall_backends) if args.recall_backends else labels
    recalls = {} if args.no_recall else recall(recall_labels, domains, args.recall_threads)
    print_table(list(dict.fromkeys(labels + recall_labels)), figures, recalls, domains)
    print(f"\n{args.chunks} statute chunks per call, median of {args.rounds} calls; {args.queries} single queries; "
          "1 thread; all backends timed in alternation in this run. R@5: dense, test split, each backend's own "
          "pool vectors.")
    return 0


def chosen(names: str) -> list[str]:
    """The installed backends among comma-separated `names` (all when empty), in that order; says what is not."""
    wanted = [label.strip() for label in names.split(",")] if names else list(BACKENDS)
    labels = [label for label in wanted if available(label)]
    skipped = [label for label in wanted if label not in labels]
    missing = f" (not installed: {', '.join(skipped)})" if skipped else ""
    print(f"bench_embed_backends: {', '.join(labels)}{missing}", flush=True)
    return labels


if __name__ == "__main__":
    raise SystemExit(main())
