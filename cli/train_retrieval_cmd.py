"""`dossier train reranker | embedder | bank | gate | router --domain D`: the retrieval recipes (training/retriever/).

`cli/train_cmd.py` owns `dossier train` and calls `register(train_commands)` with its sub-command action.
A kept model is installed as `<cache>/models/<output>` (name it in domain.toml: [models] embedder / reranker).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(train_commands: argparse._SubParsersAction) -> None:
    for name, help_text in (
        ("reranker", "cross-encoder reranker on (query, gold, hard negative) pairs of the train split"),
        ("embedder", "query-side adapter on the frozen embedder, fitted on the train split"),
    ):
        parser = train_commands.add_parser(name, help=help_text)
        parser.add_argument("--domain", required=True)
        parser.add_argument("--recipe", type=Path, help="a recipe TOML (default: the shipped one)")
        parser.add_argument("--out", type=Path, default=Path("runs"), help="run directories go under here")
        parser.add_argument("--cache", type=Path, help="embedding cache (default runs/train/embedder/cache)")
        parser.add_argument("--index-dir", type=Path, help="embedder: train against this base-model index's vectors")
        parser.add_argument("--no-install", action="store_true", help="measure only; do not install the model")
        parser.add_argument("--json", action="store_true", help="print the report JSON on stdout")
        parser.set_defaults(handler=train_embedder if name == "embedder" else train_reranker)
    bank = train_commands.add_parser("bank", help="question bank: the train split's questions with their gold "
                                     "documents, embedded by the domain's query embedder ([retrieval] question_bank)")
    bank.add_argument("--domain", required=True)
    bank.add_argument("--evalsets", default="", help="retrieval or QA sets whose records name their gold "
                      "documents, comma-separated (default: the domain's retrieval sets)")
    bank.add_argument("--splits", default="train", help="train (default), or train,dev once the bank's settings are "
                      "chosen on dev: evaluations of dev then leave dev's questions out; test never enters")
    bank.add_argument("--out", type=Path, help="the bank file (default: the one domain.toml names, else "
                      "domains/D/models/question_bank.npz)")
    bank.set_defaults(handler=train_bank)
    gate = train_commands.add_parser("gate", help="domain gate: tells this domain's questions from the other "
                                     "domains' by the domain's query vectors ([retrieval] domain_gate)")
    gate.add_argument("--domain", required=True)
    gate.add_argument("--per-set", type=int, default=600, help="questions per set and split at most (train; dev "
                      "a quarter of it)")
    gate.add_argument("--keep", type=float, default=0.99, help="the share of this domain's dev questions the "
                      "threshold keeps (default 0.99)")
    gate.add_argument("--negatives", type=Path, help="a JSONL of questions of no domain (`question` or `prompt`), "
                      "told apart too: a fifth by text hash for dev, the rest for train")
    gate.add_argument("--exclude", default="", metavar="REGEX", help="negatives whose text matches this regular "
                      "expression are passed over (a general file's questions of this very domain)")
    gate.add_argument("--out", type=Path, help="the gate file (default: the one domain.toml names, else "
                      "domains/D/models/domain_gate.npz)")
    gate.set_defaults(handler=train_gate)
    router = train_commands.add_parser("router", help="scope router: tells case descriptions from everyday questions "
                                       "by the domain's query vectors ([retrieval] scope_router)")
    router.add_argument("--domain", required=True)
    router.add_argument("--cases", required=True, help="sets of case descriptions, comma-separated")
    router.add_argument("--others", required=True, help="sets of other questions, comma-separated")
    router.add_argument("--per-set", type=int, default=2000, help="train questions per set at most")
    router.add_argument("--out", type=Path, help="the router file (default: the one domain.toml names, else "
                        "domains/D/models/scope_router.npz)")
    router.set_defaults(handler=train_router)


def _finish(args: argparse.Namespace, report: dict, run_dir: Path, key: str) -> int:
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "history"}, ensure_ascii=False))
    else:
        verdict = f"kept -> {report.get('model_dir', '(not installed)')}" if report["kept"] else "not kept"
        print(f"{report['output']}: dev {key} {json.dumps(report[key])}; {verdict}")
    print(f"report: {run_dir / 'report.json'}", file=sys.stderr)
    return 0


def train_embedder(args: argparse.Namespace) -> int:
    from training.retriever.embedder import recipe_for, train_embedder

    recipe = recipe_for(args.domain, args.recipe)
    run_dir = args.out / "train" / "embedder" / args.domain / time.strftime("%Y%m%d-%H%M%S")
    cache = args.cache or args.out / "train" / "embedder" / "cache"
    report = train_embedder(recipe, run_dir, cache, install=not args.no_install, index_dir=args.index_dir)
    return _finish(args, report, run_dir, f"dev_recall@{recipe.k}")


def train_reranker(args: argparse.Namespace) -> int:
    from training.retriever.reranker import recipe_for, train_reranker

    recipe = recipe_for(args.domain, args.recipe)
    run_dir = args.out / "train" / "reranker" / args.domain / time.strftime("%Y%m%d-%H%M%S")
    cache = args.cache or args.out / "train" / "embedder" / "cache"
    report = train_reranker(recipe, run_dir, cache, install=not args.no_install)
    return _finish(args, report, run_dir, f"dev_recall@{recipe.k}")


def train_bank(args: argparse.Namespace) -> int:
    from domains import load_domain
    from training.retriever.question_bank import bank_splits, write_bank

    sets = [name for name in args.evalsets.split(",") if name]
    path, counts = write_bank(load_domain(args.domain), sets, args.out, bank_splits(args.splits))
    print(json.dumps({"bank": str(path), "questions": counts, "bytes": path.stat().st_size}, ensure_ascii=False))
    return 0


def train_gate(args: argparse.Namespace) -> int:
    from core.errors import ConfigError
    from domains import load_domain
    from training.retriever.domain_gate import write_gate

    if args.exclude and args.negatives is None:
        raise ConfigError("--exclude filters --negatives; give the negatives file too")
    path, gate = write_gate(load_domain(args.domain), args.out, args.per_set, args.keep, args.negatives, args.exclude)
    print(json.dumps({"gate": str(path), "threshold": round(gate.threshold, 4), **gate.report}, ensure_ascii=False))
    return 0


def train_router(args: argparse.Namespace) -> int:
    from domains import load_domain
    from training.retriever.scope_router import write_router

    names = [[name for name in text.split(",") if name] for text in (args.cases, args.others)]
    path, router = write_router(load_domain(args.domain), names[0], names[1], args.out, args.per_set)
    print(json.dumps({"router": str(path), **router.report}, ensure_ascii=False))
    return 0
