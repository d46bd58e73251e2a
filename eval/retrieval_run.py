"""Run retrieval configurations over an eval set and keep everything: per-query rows, a summary and a plot.

A configuration is a set of retrieval stages: `bm25`, `dense`, `hybrid` (dense + bm25, fused) and any of them
with `+rerank`. Each query's hits become document ids (the chunks of one document count once, at the best rank),
are scored against the gold ids with eval.metrics, and are written as one JSONL row per query:

    <run_dir>/<config>.jsonl   {"id", "query", "gold", "ranked", "hits": [{chunk_id, doc_id, score, retriever,
                                stage_scores}], "metrics": {"recall@5": .., "mrr": .., ...}, "ms": ..}
    <run_dir>/summary.json     the summary printed by `dossier eval retrieval --json`
    <run_dir>/recall.png       recall@k curves, one per configuration
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.protocols import Retriever
from core.records import Hit
from core.stages import FIRST_STAGES, Stage
from eval.evalsets import EvalRecord, EvalSet
from eval.metrics import dedupe, mean_metrics, ranking_metrics

log = logging.getLogger(__name__)

BASE_STAGES: dict[str, tuple[Stage, ...]] = {
    "bm25": (Stage.BM25,), "dense": (Stage.DENSE,), "hybrid": (Stage.DENSE, Stage.BM25)}
DEFAULT_CONFIGS = ("bm25", "dense", "hybrid", "hybrid+rerank")


RetrieverFactory = Callable[[tuple[str, ...]], Retriever]


def config_stages(name: str) -> tuple[str, ...]:
    """'hybrid+rerank' -> ('dense', 'bm25', 'rerank')."""
    base, _, extra = name.partition("+")
    if base not in BASE_STAGES or extra not in ("", "rerank"):
        valid = [*BASE_STAGES, *(f"{b}+rerank" for b in BASE_STAGES)]
        raise ConfigError.invalid_choice("eval configuration", name, valid)
    return BASE_STAGES[base] + ((Stage.RERANK,) if extra else ())


def config_name(stages: Sequence[str]) -> str:
    """The configuration name of a domain's `retrieval.stages`: ('dense', 'bm25') -> 'hybrid'."""
    retrieval = tuple(s for s in FIRST_STAGES if s in stages)
    base = {("dense",): "dense", ("bm25",): "bm25", ("dense", "bm25"): "hybrid"}.get(retrieval, "none")
    return base + ("+rerank" if Stage.RERANK in stages else "")


@dataclass(frozen=True, slots=True)
class ConfigResult:
    name: str
    rows: tuple[dict[str, Any], ...]
    metrics: Mapping[str, float]
    seconds: float


@dataclass(frozen=True, slots=True)
class RunResult:
    evalset: EvalSet
    configured: str
    ks: tuple[int, ...]
    results: tuple[ConfigResult, ...]
    unavailable: Mapping[str, str] = field(default_factory=dict)  # config -> why it could not run


def hit_row(hit: Hit) -> dict[str, Any]:
    return {
        "chunk_id": hit.chunk.chunk_id,
        "doc_id": hit.chunk.doc_id,
        "score": round(float(hit.score), 6),
        "retriever": hit.retriever,
        "stage_scores": {name: round(float(v), 6) for name, v in hit.stage_scores.items()},
    }


def query_row(record: EvalRecord, hits: Sequence[Hit], ks: Sequence[int], ms: float) -> dict[str, Any]:
    ranked = dedupe(hit.chunk.doc_id for hit in hits)
    return {
        "id": record.record_id,
        "query": record.query,
        "gold": list(record.gold_ids),
        "ranked": ranked[: max(ks)],
        "hits": [hit_row(hit) for hit in hits],
        "metrics": ranking_metrics(ranked, record.gold_ids, ks),
        "ms": round(ms, 2),
    }


def run_config(
    name: str, retriever: Retriever, evalset: EvalSet, ks: Sequence[int], fetch_k: int, batch: int = 16
) -> ConfigResult:
    """Retrieve `fetch_k` chunks per query (more than max(ks), so that de-duplicated documents still fill the
    ranks), with the eval set's corpus filter. Queries go in batches of `batch` (one embedding call per batch);
    `ms` is the batch time shared equally."""
    from tqdm import tqdm

    filters = dict(evalset.spec.corpus_filter) or None
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tqdm(total=len(evalset.records), desc=f"eval {name}", unit="q") as progress:
        for start in range(0, len(evalset.records), batch):
            records = evalset.records[start : start + batch]
            t0 = time.perf_counter()
            queries = [record.query for record in records]
            found = [result.hits for result in retriever.retrieve(queries, fetch_k, filters=filters)]
            ms = (time.perf_counter() - t0) * 1000 / len(records)
            rows.extend(query_row(r, hits, ks, ms) for r, hits in zip(records, found, strict=True))
            progress.update(len(records))
    metrics = mean_metrics([row["metrics"] for row in rows]) if rows else {}
    return ConfigResult(name, tuple(rows), metrics, time.perf_counter() - started)


def run_configs(
    evalset: EvalSet,
    factory: RetrieverFactory,
    configs: Sequence[str],
    ks: Sequence[int],
    configured: str,
    fetch_k: int = 0,
) -> RunResult:
    """Run each configuration; one that cannot be built (e.g. no reranker configured) is recorded, not fatal."""
    fetch_k = fetch_k or 2 * max(ks)
    results: list[ConfigResult] = []
    unavailable: dict[str, str] = {}
    for name in configs:
        stages = config_stages(name)
        try:
            retriever = factory(stages)
        except ConfigError as err:
            log.warning("configuration %s skipped: %s", name, err)
            unavailable[name] = str(err)
            continue
        results.append(run_config(name, retriever, evalset, ks, fetch_k))
    return RunResult(evalset, configured, tuple(ks), tuple(results), unavailable)


def by_split(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Metrics per eval split (eval/splits.py) of the rows' query ids: train / dev / test and held-out (dev+test)."""
    from eval.splits import split_of

    groups: dict[str, list[Mapping[str, float]]] = {}
    for row in rows:
        split = split_of(row["id"])
        groups.setdefault(split, []).append(row["metrics"])
        if split != "train":
            groups.setdefault("heldout", []).append(row["metrics"])
    return {name: {"n": len(group), **mean_metrics(group)} for name, group in sorted(groups.items())}


def summary(run: RunResult, splits: Sequence[str], run_dir: Path | None = None) -> dict[str, Any]:
    by_config = {r.name: dict(r.metrics) for r in run.results}
    es = run.evalset
    return {
        "domain": es.domain,
        "evalset": es.spec.name,
        "n": len(es.records),
        "config": run.configured,
        "metrics": by_config.get(run.configured, {}),
        "by_config": by_config,
        "skipped": es.skipped,
        "filtered": es.filtered,
        "splits": list(splits),
        "file": str(es.source),
        "ks": list(run.ks),
        "by_split": {r.name: by_split(r.rows) for r in run.results},
        "seconds": {r.name: round(r.seconds, 1) for r in run.results},
        "unavailable": dict(run.unavailable),
        "run_dir": str(run_dir) if run_dir else "",
    }


def write_run(run: RunResult, run_dir: Path, splits: Sequence[str]) -> dict[str, Any]:
    """Write the per-query JSONL of each configuration, summary.json and recall.png; return the summary."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for result in run.results:
        with (run_dir / f"{result.name}.jsonl").open("w", encoding="utf-8") as handle:
            for row in result.rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    data = summary(run, splits, run_dir)
    (run_dir / "summary.json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if run.results:
        plot_recall(run, run_dir / "recall.png")
    return data


def plot_recall(run: RunResult, path: Path) -> None:
    """recall@k against k, one line per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for result in run.results:
        ax.plot(run.ks, [result.metrics.get(f"recall@{k}", 0.0) for k in run.ks], marker="o", label=result.name)
    ax.set(xlabel="k", ylabel="recall@k", ylim=(0, 1), xticks=list(run.ks))
    ax.set_title(f"{run.evalset.domain} / {run.evalset.spec.name} (n={len(run.evalset.records)})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(run: RunResult) -> str:
    """A plain-text table: one line per configuration, recall@k per k, MRR and nDCG at the largest k."""
    top = max(run.ks)
    head = ["config", *(f"R@{k}" for k in run.ks), "MRR", f"nDCG@{top}", "s"]
    lines = ["  ".join(f"{h:>13}" if i == 0 else f"{h:>8}" for i, h in enumerate(head))]
    for r in run.results:
        keys = [*(f"recall@{k}" for k in run.ks), "mrr", f"ndcg@{top}"]
        cells = [r.metrics.get(key, 0.0) for key in keys]
        mark = "*" if r.name == run.configured else " "
        lines.append(f"{r.name + mark:>13}  " + "  ".join(f"{c:8.3f}" for c in cells) + f"  {r.seconds:8.0f}")
    for name, why in run.unavailable.items():
        lines.append(f"{name:>13}  unavailable: {why}")
    return "\n".join(lines)
