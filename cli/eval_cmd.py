"""`dossier eval retrieval | index | calibrate | adjudicate` (and `answers | compare`, cli/eval_answers_cmd.py):
measured recall per retrieval configuration, gold-pool indexes, the abstention threshold, and hit@k with judged
misses.

    dossier eval retrieval --domain legal --evalset cail2018_lawbench_fact2article -k 1,5,10,20 [--json]
    dossier eval calibrate --domain legal [--near-miss] [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from cli import eval_answers_cmd

CONFIGS = "bm25,dense,hybrid,hybrid+rerank"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("eval", help="evaluate retrieval; calibrate abstention")
    sub = parser.add_subparsers(dest="eval_command", required=True, metavar="ACTION")

    retrieval = sub.add_parser("retrieval", help="recall@k, hit@k, MRR, nDCG@k per retrieval configuration")
    retrieval.add_argument("--domain", required=True)
    retrieval.add_argument("--evalset", required=True, help="a set declared in the domain's domain.toml")
    retrieval.add_argument("--file", type=Path, help="read this JSONL (same schema as the set) instead")
    retrieval.add_argument("-k", dest="ks", default="1,5,10,20", help="cut-offs, comma-separated (default 1,5,10,20)")
    retrieval.add_argument("--configs", default=CONFIGS, help=f"comma-separated (default {CONFIGS})")
    retrieval.add_argument("--limit", type=int, default=0, help="only the first N queries with gold")
    retrieval.add_argument("--split", default="all", help="all, or some of train,dev,test (eval/splits.py)")
    retrieval.add_argument("--json", action="store_true", help="print only the summary JSON on stdout")
    retrieval.add_argument("--query-cache", type=Path, help="keep query vectors in this file across runs")
    retrieval.add_argument("--no-corpus-filter", action="store_true",
                           help="ignore the set's corpus_filter: rank the whole index, as a user's question does")
    _common(retrieval)
    retrieval.set_defaults(handler=eval_retrieval)

    index = sub.add_parser("index", help="index only the gold document pool of an eval set (eval/eval_index.py)")
    index.add_argument("--domain", required=True)
    index.add_argument("--evalset", required=True)
    index.add_argument("--embedder", help="override models.embedder")
    index.add_argument("--reranker", help=argparse.SUPPRESS)
    index.add_argument("--out", type=Path, default=Path("runs/eval-index"), help="default runs/eval-index")
    index.add_argument("--expand-by", default="", metavar="FIELD",
                       help="index every document sharing FIELD with a gold one (legal: law_id = whole laws)")
    index.add_argument("--from-index", type=Path,
                       help="with a query-adapter --embedder: relabel this base-model index instead of re-embedding")
    index.set_defaults(handler=eval_index)

    calibrate = sub.add_parser("calibrate", help="choose the abstention threshold (in- vs out-of-domain queries)")
    calibrate.add_argument("--domain", required=True)
    calibrate.add_argument("--per-set", type=int, default=60, help="dev queries per eval set (default 60)")
    calibrate.add_argument("--evalsets", default="", help="in-domain sets, comma-separated (default: retrieval + qa)")
    calibrate.add_argument("--near-miss", action="store_true",
                           help="choose the near-miss check instead (eval/near_miss.py): dev questions with their "
                                "gold retrieved against the same questions with it hidden")
    calibrate.add_argument("--keep", type=float, default=0.98,
                           help="with --near-miss: the share of answerable dev questions to keep (default 0.98)")
    calibrate.add_argument("--write", action="store_true", help="write the threshold into the domain.toml")
    calibrate.add_argument("--json", action="store_true", help="print only the result JSON on stdout")
    _common(calibrate)
    calibrate.set_defaults(handler=eval_calibrate)

    adjudicate = sub.add_parser("adjudicate", help="hit@k of a retrieval run with its misses judged by a reader "
                                                   "(eval/adjudication.py)")
    adjudicate.add_argument("run", type=Path, help="a run's per-query JSONL (e.g. RUN_DIR/hybrid.jsonl)")
    adjudicate.add_argument("--judgments", type=Path, required=True, help="the judged misses (JSONL)")
    adjudicate.add_argument("-k", type=int, default=5, help="cut-off (default 5)")
    adjudicate.add_argument("--json", action="store_true", help="print only the result JSON on stdout")
    adjudicate.set_defaults(handler=eval_adjudicate)

    eval_answers_cmd.register(sub)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index-dir", type=Path, help="the index version to load (default: the domain's current)")
    parser.add_argument("--reranker", help="override models.reranker (a registry name or a local path)")
    parser.add_argument("--embedder", help="override models.embedder (the index must have been built with it)")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="where run directories go (default runs/)")
    parser.add_argument("--dense-weight", type=float, help="override retrieval.dense_weight (RRF)")
    parser.add_argument("--sparse-weight", type=float, help="override retrieval.sparse_weight (RRF)")
    parser.add_argument("--filter", dest="filters", action="append", default=[], metavar="KEY=V1|V2",
                        help="a metadata filter on every query, over the domain's retrieval.filters (repeatable), "
                             "e.g. status=现行有效|已被修改")


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """["status=现行有效|已被修改"] -> {"status": ["现行有效", "已被修改"]}; a value-less item is a usage error."""
    from core.errors import DossierError

    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        options = [v for v in values.split("|") if v]
        if not sep or not key.strip() or not options:
            raise DossierError(f"--filter {item!r}: expected KEY=VALUE or KEY=V1|V2")
        filters[key.strip()] = options
    return filters


def load_config(args: argparse.Namespace) -> Any:
    """The domain config with the command line's model overrides applied."""
    from domains import load_domain
    from domains.config import with_embedder

    cfg = with_embedder(load_domain(args.domain), args.embedder) if args.embedder else load_domain(args.domain)
    models = {key: value for key, value in (("reranker", args.reranker),) if value}
    weights = {key: getattr(args, key, None) for key in ("dense_weight", "sparse_weight")}
    weights = {key: value for key, value in weights.items() if value is not None}
    filters = {**cfg.retrieval.filters, **parse_filters(getattr(args, "filters", []))}
    return replace(cfg, models=replace(cfg.models, **models), retrieval=replace(cfg.retrieval, **weights,
                                                                                 filters=filters))


def retriever_factory(cfg: Any, index_dir: Path | None, memory: dict | None = None) -> Any:
    """stages -> a loaded retriever. A rerank stage without a configured reranker is a ConfigError. Query
    embeddings are shared between the configurations of one run (eval.query_cache)."""
    from core.errors import ConfigError
    from core.stages import FIRST_STAGES, Stage
    from eval.query_cache import CachingEmbedder
    from rag.build_retrieval import build_retriever

    memory = {} if memory is None else memory

    def factory(stages: tuple[str, ...]) -> Any:
        if Stage.RERANK in stages and not cfg.models.reranker:
            raise ConfigError(f"domain {cfg.name}: no reranker configured (models.reranker, or --reranker)")
        # "bm25" and "dense" name one stage alone: the question bank votes (and scopes) only in the fused (hybrid)
        # configs; its hub correction is part of the dense stage itself and stays
        single = len(set(stages) & set(FIRST_STAGES)) < 2
        used = replace(cfg, retrieval=replace(cfg.retrieval, bank_weight=0.0, scope_weight=0.0)) if single else cfg
        retriever = build_retriever(used, stages=stages, index_dir=index_dir, load=False)
        retriever.embedder = CachingEmbedder(retriever.embedder, memory)
        return retriever.load()

    return factory


def _ks(text: str) -> tuple[int, ...]:
    from core.errors import ConfigError

    try:
        ks = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError as err:
        raise ConfigError(f"-k: expected comma-separated integers, got {text!r}") from err
    if not ks or ks[0] < 1:
        raise ConfigError(f"-k: cut-offs must be >= 1, got {text!r}")
    return ks


def eval_retrieval(args: argparse.Namespace) -> int:
    from core.errors import DossierError
    from eval.evalsets import load_evalset
    from eval.query_cache import load_memory, save_memory
    from eval.retrieval_run import config_name, config_stages, format_table, run_configs, write_run
    from eval.splits import leave_out_of_bank, parse_splits

    ks = _ks(args.ks)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for name in configs:
        config_stages(name)  # fail on a misspelt configuration before any model loads
    splits = parse_splits(args.split)
    cfg = leave_out_of_bank(load_config(args), splits)  # the measured split's own questions never vote
    evalset = load_evalset(cfg, args.evalset, file=args.file, splits=splits, limit=args.limit)
    if args.no_corpus_filter and evalset.spec.corpus_filter:
        evalset = dataclasses.replace(evalset, spec=dataclasses.replace(evalset.spec, corpus_filter={}))
    if not evalset.records:
        raise DossierError(f"eval set {args.evalset!r}: no queries with gold ids ({evalset.skipped} skipped)")
    memory = load_memory(args.query_cache)
    factory = retriever_factory(cfg, args.index_dir, memory)
    run = run_configs(evalset, factory, configs, ks, config_name(cfg.retrieval.stages))
    save_memory(args.query_cache, memory)
    run_dir = args.out / "eval" / cfg.name / args.evalset / time.strftime("%Y%m%d-%H%M%S")
    data = write_run(run, run_dir, sorted(splits))
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print(f"{cfg.name} / {args.evalset}: n={data['n']} (skipped {data['skipped']} without gold, "
              f"filtered {data['filtered']}); * = the configured pipeline")
        print(format_table(run))
        print(f"run written to {run_dir}", file=sys.stderr)
    return 0


def eval_adjudicate(args: argparse.Namespace) -> int:
    from core.errors import ConfigError
    from eval.adjudication import adjudicated_hits, read_judgments
    from eval.evalsets import read_jsonl

    if args.k < 1:
        raise ConfigError(f"-k must be >= 1, got {args.k}")
    if not args.run.is_file():
        raise ConfigError(f"{args.run}: no such run file (a retrieval run's <config>.jsonl)")
    result = adjudicated_hits(read_jsonl(args.run), read_judgments(args.judgments), args.k)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        k = args.k
        print(f"{args.run}: n={result['n']}, hit@{k} {result[f'hit@{k}']:.3f} as labelled, "
              f"{result[f'adjudicated_hit@{k}']:.3f} with the judged misses")
        print(f"misses {result['misses']}: judged {result['judged']}, unjudged {result['unjudged_misses']}, "
              f"judged basis no longer in the top {k}: {result['basis_no_longer_in_top_k']}")
    return 0


def eval_index(args: argparse.Namespace) -> int:
    from eval.eval_index import adapter_index, build_eval_index, eval_index_dir

    cfg = load_config(args)
    if args.from_index:
        root = adapter_index(args.from_index, cfg.models.embedder, eval_index_dir(args.out, cfg, args.evalset))
    else:
        root = build_eval_index(cfg, args.evalset, args.out, args.expand_by)
    print(f"eval index for {cfg.name}/{args.evalset} ({cfg.models.embedder}): --index-dir {root}")
    return 0


def _calibrate_command(args: argparse.Namespace) -> str:
    """The command line that reproduces this calibration (for the comment in domain.toml)."""
    parts = ["dossier eval calibrate", f"--domain {args.domain}", f"--per-set {args.per_set}"]
    if args.near_miss:
        parts.append(f"--near-miss --keep {args.keep:g}")
    for flag, value in (("--index-dir", args.index_dir), ("--evalsets", args.evalsets),
                        ("--embedder", args.embedder), ("--reranker", args.reranker)):
        if value:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def eval_calibrate(args: argparse.Namespace) -> int:
    from eval.calibrate import calibrate_domain, format_calibration, write_threshold
    from eval.splits import leave_out_of_bank

    cfg = leave_out_of_bank(load_config(args), {"dev"})  # calibration reads dev questions
    names = [n.strip() for n in args.evalsets.split(",") if n.strip()]
    if args.near_miss:
        return _calibrate_near_miss(cfg, args, names)
    result = calibrate_domain(cfg, retriever_factory(cfg, args.index_dir), per_set=args.per_set, evalsets=names)
    run_dir = _keep_calibration(cfg, args, result, "", "calibration.json")
    if args.write:
        write_threshold(cfg, result["threshold"], command=_calibrate_command(args))
    _show_calibration(cfg, args, result, format_calibration(result), run_dir)
    return 0


def _keep_calibration(cfg: Any, args: argparse.Namespace, result: dict[str, Any], prefix: str, name: str) -> Path:
    """The result, with the index it was read on, as JSON in a new run folder under --out; the folder."""
    result["index_dir"] = str(args.index_dir or "")
    run_dir = args.out / "calibrate" / cfg.name / time.strftime(f"{prefix}%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / name).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return run_dir


def _show_calibration(cfg: Any, args: argparse.Namespace, result: dict[str, Any], text: str, run_dir: Path) -> None:
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(text)
        print(f"written to {run_dir}" + (f" and {cfg.root / 'domain.toml'}" if args.write else ""), file=sys.stderr)


def _calibrate_near_miss(cfg: Any, args: argparse.Namespace, names: list[str]) -> int:
    from eval.near_miss import calibrate_near_miss, format_near_miss, write_near_miss

    retriever = retriever_factory(cfg, args.index_dir)(tuple(cfg.retrieval.stages))
    result = calibrate_near_miss(cfg, retriever, per_set=args.per_set, keep=args.keep, evalsets=names)
    run_dir = _keep_calibration(cfg, args, result, "near-miss-", "near_miss.json")
    if args.write:
        write_near_miss(cfg, result["near_miss_weight"], result["near_miss_threshold"], _calibrate_command(args))
    _show_calibration(cfg, args, result, format_near_miss(result), run_dir)
    return 0
