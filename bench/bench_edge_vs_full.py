"""The edge bundle against the full build, per domain, on the test split of the domain's own eval sets:

- retrieval: top-5 overlap (documents both return in their top 5 / 5, per query, mean) and recall@5 / MRR of each,
  over the same queries (eval.retrieval_run: the same code as `dossier eval retrieval`);
- answers: the task score (MCQ accuracy or character F1) and citation precision / coverage of each, over the same
  questions (eval.answer_run: the same code as `dossier eval answers`), each side with its own generator: the full
  build's GGUF and the bundle's. A bundle whose GGUF is the source's bytes (same sha256) shares the full build's
  reply cache, so a question whose evidence is the same at the edge is generated once; any other (requantised, or
  without its tied output copy) generates its own replies (cached under its sha256);
- size: the bundle's files against what the full build loads (the embedder's model dir, the generator GGUF, the
  index version), and the bundle's Python environment against the project's.

The full build embeds queries with torch (the domain's [embedding]); the bundle with its ONNX graph (int8 weights;
activations int8 too unless it was exported with `--embedder-int8 weights`, as `--small` is) and the query adapter
in numpy. A bundle that is missing is exported first (`dossier export edge`).

Run: DOSSIER_CACHE_DIR=.cache OMP_NUM_THREADS=1 .venv/bin/python bench/bench_edge_vs_full.py
     [--domains legal,medical,finance] [--queries 300] [--answers 12] [--bundles .cache/edge]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# finance answers FinQA (reference answers): its MCQ set scores 0 on both sides (the base model names no option)
ANSWER_SETS = {"legal": "lawbench_consultation", "medical": "huatuo26m_test_qa", "finance": "fincuge_finqa"}
FETCH_K = 20  # chunks per query: de-duplicated documents still fill the top 5


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def bundle_for(domain: str, root: Path) -> Path:
    folder = root / domain
    if not folder.is_dir():
        from domains import load_domain
        from edge.export.bundle import ExportRequest, export_edge

        export_edge(ExportRequest(load_domain(domain), folder))
    return folder


def overlap(full_rows: list[dict], edge_rows: list[dict], k: int = 5) -> float:
    pairs = zip(full_rows, edge_rows, strict=True)
    return statistics.mean(len(set(f["ranked"][:k]) & set(e["ranked"][:k])) / k for f, e in pairs)


def retrieval_figures(cfg: Any, full_retriever: Any, edge_retriever: Any, limit: int) -> list[str]:
    from eval.evalsets import load_evalset
    from eval.retrieval_run import run_config

    lines = []
    for spec in cfg.evalsets:
        if spec.kind != "retrieval":
            continue
        evalset = load_evalset(cfg, spec.name, splits=frozenset({"test"}), limit=limit)
        full = run_config("full", full_retriever, evalset, (5,), FETCH_K)
        edge = run_config("edge", edge_retriever, evalset, (5,), FETCH_K)
        lines.append(f"  {spec.name} ({len(evalset.records)} test queries): top-5 overlap "
                     f"{overlap(list(full.rows), list(edge.rows)):.3f}; recall@5 full {full.metrics['recall@5']:.3f} "
                     f"edge {edge.metrics['recall@5']:.3f}; MRR full {full.metrics['mrr']:.3f} edge "
                     f"{edge.metrics['mrr']:.3f}")
        print(lines[-1], flush=True)
    return lines


def answer_figures(cfg: Any, sides: dict[str, Any], n: int, out: Path) -> None:
    """Each side (name -> pipeline; the first is the reference) answers the same test questions; its rows go to
    out/<domain>-<name>.jsonl and its figures, relative to the first side's, are printed."""
    from eval.answer_items import set_items
    from eval.answer_run import run_items, summarise

    items, _ = set_items(cfg, ANSWER_SETS[cfg.name], frozenset({"test"}), limit=n)
    keys = ("mcq_accuracy", "char_f1", "rouge_l", "citation_precision", "citation_coverage", "evidence_recall")
    metrics = {}
    for name, pipeline in sides.items():
        metrics[name] = summarise(run_items(pipeline, items, True, out / f"{cfg.name}-{name}.jsonl"))["metrics"]
        shown = ", ".join(f"{k} {metrics[name][k]:.3f}" for k in keys if metrics[name].get(k) is not None)
        print(f"  answers {ANSWER_SETS[cfg.name]} ({len(items)} test questions), {name}: {shown}", flush=True)
    reference, *others = sides
    for name in others:
        relative = ", ".join(f"{k} {metrics[name][k] / metrics[reference][k] - 1:+.1%}" for k in keys
                             if metrics[reference].get(k) and metrics[name].get(k) is not None)
        print(f"  answers, {name} vs {reference} (relative): {relative}", flush=True)


def size_figures(cfg: Any, bundle: Path) -> None:
    from core.paths import index_root
    from models.registry import gguf_file, resolve_model
    from retrieval.store import IndexStore

    embedder, gguf = Path(resolve_model(cfg.models.embedder)), Path(gguf_file(cfg.models.generator_gguf))
    index = IndexStore(index_root(cfg.name)).current_dir()
    full = tree_bytes(embedder) + tree_bytes(gguf) + tree_bytes(index)
    edge = tree_bytes(bundle)
    archive = bundle.with_name(bundle.name + ".tar.gz")
    print(f"  size: bundle {edge / 2**20:.0f} MiB ({archive.stat().st_size / 2**20:.0f} MiB .tar.gz) vs the full "
          f"build's models + index {full / 2**20:.0f} MiB: ratio {edge / full:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", default="legal,medical,finance")
    parser.add_argument("--queries", type=int, default=300, help="test queries per retrieval set (0: all)")
    parser.add_argument("--answers", type=int, default=12, help="test questions answered per domain (0: none)")
    parser.add_argument("--bundles", type=Path, default=Path(".cache/edge"))
    parser.add_argument("--out", type=Path, default=Path("runs/edge-vs-full"))
    parser.add_argument("--edge-venv", type=Path, help="a venv made from the bundle's requirements.txt (its size)")
    parser.add_argument("--full-precision", choices=("auto", "fp32", "bf16"), default="auto", help="the full "
                        "build's query embedding precision (auto: bf16 where the CPU has it). Run once with each to "
                        "see how far the full build moves from itself between CPUs: the yardstick for the bundle")
    parser.add_argument("--split-causes", action="store_true", help="also answer with the full build's retrieval "
                        "and the bundle's generator (rows: <domain>-edge-generator.jsonl): which part moved the "
                        "answers")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from domains import load_domain
    from edge.layout import GENERATOR
    from edge.runtime import Threads, edge_pipeline, open_bundle
    from eval.answer_cache import CachingGenerator
    from rag.build import build_pipeline
    from rag.build_generation import build_generator, generator_identity
    from rag.pipeline import RagPipeline

    for domain in args.domains.split(","):
        cfg = load_domain(domain)
        if args.full_precision != "auto":
            cfg = replace(cfg, embedding=replace(cfg.embedding, precision=args.full_precision))
        bundle = open_bundle(bundle_for(domain, args.bundles), hashes=False)
        generator, embedder = bundle.manifest["generator"], bundle.manifest.get("embedder", {})
        print(f"\n{domain}: bundle {bundle.root} (generator {generator['quant']}, output {generator['output_quant']}; "
              f"FAISS {bundle.manifest['index']['faiss']}; embedder {embedder.get('graph', 'onnx int8')})", flush=True)
        size_figures(cfg, bundle.root)
        full = build_pipeline(cfg, generator=build_generator(cfg), load=False)
        full.retriever.load()
        edge = edge_pipeline(bundle, Threads(decode=1, prefill=2))
        retrieval_figures(cfg, full.retriever, edge.retriever, args.queries)
        if args.answers:
            replies = args.out / "replies.jsonl"
            full_generator = CachingGenerator(full.generator, replies, generator_identity(cfg, "llama-cpp"))
            sha = bundle.manifest["files"][GENERATOR]["sha256"]
            if sha == bundle.manifest["generator"]["source_sha256"]:
                edge_generator = full_generator  # the same GGUF bytes: a prompt both sides build is generated once
            else:  # requantised or without its tied copy: its own replies, keyed by the bundle GGUF's sha256
                edge_generator = CachingGenerator(edge.generator, replies, f"edge-llama-cpp:sha256:{sha}")
            full_name = "full" if args.full_precision == "auto" else f"full-{args.full_precision}"
            sides = {full_name: RagPipeline(cfg, full.retriever, full_generator),
                     "edge": RagPipeline(edge.cfg, edge.retriever, edge_generator)}
            if args.split_causes and edge_generator is not full_generator:
                # the full build's retrieval with the bundle's generator: the generator's share of the difference
                sides["edge-generator"] = RagPipeline(cfg, full.retriever, edge_generator)
            answer_figures(cfg, sides, args.answers, args.out)
    if args.edge_venv:
        project = Path(sys.prefix)
        print(f"\nPython environment: edge venv {tree_bytes(args.edge_venv) / 2**20:.0f} MiB vs the project's "
              f"{tree_bytes(project) / 2**20:.0f} MiB ({project})")


if __name__ == "__main__":
    main()
