"""What a shipped vector pack costs in recall, and how fast an index builds from it.

    DOSSIER_CACHE_DIR=.cache .venv/bin/python bench/bench_vector_pack.py [--domains legal,medical,finance]

For each domain's gold-pool eval set (legal CAIL fact → article, medical Huatuo, finance FinCUGE FinQA) the pool is
indexed twice, without embedding a chunk either time: once from the full-precision vectors of the vector cache
(`$DOSSIER_HOME/vectors`, filled by `dossier index build` / `dossier index pack`), once in an empty cache, so every
vector comes from the domain's int8 pack (after its checksum and a re-embedded sample are checked). Both are
searched with the test split's queries (dense alone and the shipped hybrid) and recall@1/5/20 are printed side by
side. A domain without a pack, or whose cache lacks vectors of its pool, is reported and skipped.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.paths import vector_cache_dir  # noqa: E402
from domains import load_domain  # noqa: E402
from retrieval.vector_pack import MANIFEST_FILE, PACK_DIR  # noqa: E402

GOLD_POOL_SETS = {"legal": "cail2018_lawbench_fact2article", "medical": "huatuo26m_test_qa",
                  "finance": "fincuge_finqa"}
CONFIGS = ("dense", "hybrid")
KS = (1, 5, 20)


def _pool_index(domain: str, evalset: str, home: Path) -> tuple[Path, dict, float]:
    """Build the gold-pool index with DOSSIER_HOME = `home`; returns (index root, build stats, seconds)."""
    from eval.eval_index import build_eval_index
    from retrieval.manifest import IndexManifest
    from retrieval.store import IndexStore

    os.environ["DOSSIER_HOME"] = str(home)
    start = time.perf_counter()
    root = build_eval_index(load_domain(domain), evalset, home / "eval-index")
    seconds = time.perf_counter() - start
    store = IndexStore(root)
    manifest = IndexManifest.read(store.root / str(store.current()))
    return root, dict(manifest.stats), seconds


def _recall(domain: str, evalset: str, index_root: Path, memory: dict) -> dict[str, dict[str, float]]:
    from cli.eval_cmd import retriever_factory
    from eval.evalsets import load_evalset
    from eval.retrieval_run import config_name, run_configs

    cfg = load_domain(domain)
    records = load_evalset(cfg, evalset, splits={"test"})
    run = run_configs(records, retriever_factory(cfg, index_root, memory), CONFIGS, KS,
                      config_name(cfg.retrieval.stages))
    return {r.name: dict(r.metrics) for r in run.results} | {"n": {"n": len(records.records)}}


def bench_domain(domain: str, work: Path) -> list[str]:
    evalset = GOLD_POOL_SETS[domain]
    cfg = load_domain(domain)
    if not (cfg.root / PACK_DIR / MANIFEST_FILE).is_file():
        return [f"| {domain} | {evalset} | no pack in {cfg.root / PACK_DIR}: `dossier index pack --domain {domain}` |"]
    full_home, pack_home = work / f"{domain}-full", work / f"{domain}-pack"
    full_home.mkdir(parents=True)
    (full_home / "vectors").symlink_to(vector_cache_dir().resolve(), target_is_directory=True)
    full_root, full_stats, _ = _pool_index(domain, evalset, full_home)
    pack_root, pack_stats, pack_s = _pool_index(domain, evalset, pack_home)
    if full_stats.get("embedded") or pack_stats.get("embedded"):
        logging.warning("%s: chunks were embedded (full %s, pack %s): the cache or the pack lacks part of the pool",
                        domain, full_stats.get("embedded"), pack_stats.get("embedded"))
    memory: dict = {}
    full, packed = _recall(domain, evalset, full_root, memory), _recall(domain, evalset, pack_root, memory)
    rows = []
    for config in CONFIGS:
        cells = []
        for k in KS:
            a, b = full[config][f"recall@{k}"], packed[config][f"recall@{k}"]
            cells.append(f"{a:.3f} / {b:.3f} ({100 * (b - a):+.1f})")
        rows.append(f"| {domain} | {evalset} | {full['n']['n']} | {config} | " + " | ".join(cells) +
                    f" | {pack_stats.get('from_pack', 0)} from pack, {pack_stats.get('embedded', 0)} embedded, "
                    f"{pack_s:.0f} s |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", default="legal,medical,finance")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    home = os.environ.get("DOSSIER_HOME")
    lines = ["| domain | eval set (test split) | n | config | recall@1 full / pack (points) | recall@5 | recall@20 "
             "| pool index from the pack |", "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="bench-pack-") as tmp:
        for domain in [d.strip() for d in args.domains.split(",") if d.strip()]:
            lines += bench_domain(domain, Path(tmp))
            if home is None:
                os.environ.pop("DOSSIER_HOME", None)
            else:
                os.environ["DOSSIER_HOME"] = home
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
