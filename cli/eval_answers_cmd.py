"""`dossier eval answers | compare`: the product's answers scored on a declared set, and runs side by side.

    dossier eval answers --domain legal --evalset jecqa_lawbench_mcq --split test --limit 100 [--no-retrieval]
    dossier eval answers --domain legal --evalset lawbench_consultation --unanswerable 20 --json
    dossier eval compare runs/answers/legal-jecqa_lawbench_mcq-base-rag-test runs/answers/...-closed-test
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from rag.build_generation import CHOICES

REPLIES = "replies.jsonl"


def add_embedding_precision(parser: argparse.ArgumentParser) -> None:
    """--embedding-precision, for every command whose replies are cached by prompt."""
    parser.add_argument("--embedding-precision", choices=("auto", "fp32", "bf16"),
                        help="the query embedder's precision (default: the domain's, `auto` = by the CPU). bf16 and "
                             "fp32 rank near-ties differently (30 of 100 finance prompts changed), so a run resumed "
                             "on another machine pins it to keep its reply cache (and judge scores)")


def register(sub: argparse._SubParsersAction) -> None:
    answers = sub.add_parser("answers", help="answer a set's questions with the pipeline and score every answer")
    answers.add_argument("--domain", required=True)
    answers.add_argument("--evalset", required=True, help="an mcq / qa / retrieval / dialogue set of the domain")
    answers.add_argument("--file", type=Path, help="read this JSONL (same schema as the set) instead")
    answers.add_argument("--split", default="test", help="all, or some of train,dev,test (default test)")
    answers.add_argument("--limit", type=int, default=0, help="only the first N questions of the set")
    answers.add_argument("--model", default="", help="base (the untuned model), tuned (the domain's shipped "
                         "adapter) or a directory (a LoRA adapter or a merged model); default: what the domain "
                         "serves")
    answers.add_argument("--no-retrieval", action="store_true", help="closed book: the bare question, no evidence")
    answers.add_argument("--backend", choices=CHOICES, help="generation backend (default: the domain's)")
    answers.add_argument("--unanswerable", type=int, default=0, metavar="N",
                         help="mix in N questions from each unanswerable source (other domains, off-topic, "
                              "in-domain with the gold hidden) and report abstention")
    answers.add_argument("--index-dir", type=Path, help="the index version to load (default: the domain's current)")
    answers.add_argument("--embedder", help="override models.embedder (the index must have been built with it)")
    add_embedding_precision(answers)
    answers.add_argument("--focus-sentences", type=int, metavar="N",
                         help="show each evidence passage as its N sentences nearest the question (0: whole "
                              "passages); default: the domain's [generation] focus_sentences")
    answers.add_argument("--out", type=Path, default=Path("runs/answers"), help="default runs/answers")
    answers.add_argument("--judge", default="none", metavar="none|local|URL",
                         help="RAGAS scores by an OpenAI-compatible judge: none (default), local (llama.cpp's server "
                              "over the largest fetched generator GGUF, on 127.0.0.1), or a base URL; needs "
                              "make ragas-env")
    answers.add_argument("--judge-timeout", type=int, default=900, metavar="S",
                         help="seconds one judge request may take before it counts as a failure and is judged again "
                              "on the next run (default 900; raise it on a busy CPU)")
    answers.add_argument("--json", action="store_true", help="print only the summary JSON on stdout")
    answers.set_defaults(handler=eval_answers)

    compare = sub.add_parser("compare", help="answer runs' metrics side by side")
    compare.add_argument("runs", nargs="+", type=Path, help="answer run directories")
    compare.add_argument("--paired", action="store_true",
                         help="two runs over the same questions: each metric's difference (second - first) with a "
                              "paired-bootstrap 95 %% interval and the questions each run wins")
    compare.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples for --paired (default 2000)")
    compare.add_argument("--json", action="store_true", help="with --paired: print the comparison as JSON")
    compare.set_defaults(handler=eval_compare)


def _config(args: argparse.Namespace) -> Any:
    from domains import load_domain
    from domains.config import with_embedder, with_embedding_precision, with_focus_sentences
    from rag.generator_choice import with_generator

    cfg = load_domain(args.domain)
    if args.embedder:
        cfg = with_embedder(cfg, args.embedder)
    cfg = with_embedding_precision(cfg, args.embedding_precision)
    cfg = with_focus_sentences(cfg, args.focus_sentences)
    return with_generator(cfg, args.model)


def eval_answers(args: argparse.Namespace) -> int:
    from core.errors import ConfigError
    from domains import load_domain
    from eval.answer_cache import CachingGenerator
    from eval.answer_items import set_items, unanswerable_items
    from eval.answer_report import markdown_table, write_run
    from eval.answer_run import ROWS, RunSpec, run_items, summarise
    from eval.splits import leave_out_of_bank, parse_splits
    from models.registry import is_gguf_model
    from rag.build_generation import build_generator, generator_identity
    from rag.generator_choice import generator_label

    if args.judge_timeout <= 0:  # before anything is loaded: a typo should not cost a model load
        raise ConfigError(f"--judge-timeout must be a positive number of seconds, not {args.judge_timeout}")
    splits = parse_splits(args.split)
    cfg = leave_out_of_bank(_config(args), splits)  # the asked split's own questions never vote in the bank
    items, skipped = set_items(cfg, args.evalset, splits, limit=args.limit, file=args.file)
    if args.judge != "none" and args.no_retrieval:
        raise ConfigError("--judge scores answers against the evidence they were given: drop --no-retrieval")
    if args.unanswerable:
        if args.no_retrieval:
            raise ConfigError("--unanswerable measures abstention, which needs retrieval: drop --no-retrieval")
        items += unanswerable_items(cfg, splits, args.unanswerable)
    # a merged model dir has no GGUF: it answers through transformers; an adapter, a GGUF or a registry generator
    # (whose GGUF form llama.cpp reads) keeps the domain's backend
    merged = (cfg.models.generator != load_domain(cfg.name).models.generator
              and is_gguf_model(cfg.models.generator_gguf) is False)
    backend = args.backend or ("transformers" if merged else None)
    identity = generator_identity(cfg, backend)
    label = generator_label(cfg, args.model)
    spec = RunSpec(cfg.name, args.evalset, tuple(sorted(splits)), args.limit, label, identity,
                   not args.no_retrieval, args.unanswerable, skipped, cfg.generation.focus_sentences)
    run_dir = args.out / spec.tag
    # one reply cache per --out, keyed by model files + prompt: the same command resumes a stopped run, and runs that
    # ask the same question the same way (a larger --limit, an abstention mix) generate it once
    cache = CachingGenerator(build_generator(cfg, backend), args.out / REPLIES, identity)
    pipeline = _build(cfg, args, cache)
    rows = run_items(pipeline, items, spec.retrieval, run_dir / ROWS)
    summary = summarise(rows)
    if args.judge != "none":
        from eval.answer_judge import judge_run
        from eval.answer_run import write_rows

        judge = judge_run(rows, run_dir / "judge", args.judge, embedder=pipeline.retriever.embedder,
                          timeout_s=args.judge_timeout)
        write_rows(rows, run_dir / ROWS)
        summary["metrics"] |= {f"ragas_{k}": round(v, 4) for k, v in judge["means"].items() if v is not None}
        summary["judge"] = judge
    out = write_run(run_dir, spec, summary, "dossier " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(markdown_table([out], [spec.tag]))
        print(f"run written to {run_dir} ({pipeline.generator.hits} replies from the cache, "
              f"{pipeline.generator.misses} generated)", file=sys.stderr)
    return 0


def _build(cfg: Any, args: argparse.Namespace, generator: Any) -> Any:
    """The pipeline around `generator`; a closed-book run loads no index (it never retrieves)."""
    from eval.answer_cache import NoRetriever
    from rag.build import build_pipeline

    retriever = NoRetriever() if args.no_retrieval else None
    return build_pipeline(cfg, generator=generator, retriever=retriever, index_dir=args.index_dir, load=True)


def eval_compare(args: argparse.Namespace) -> int:
    if not args.paired:
        from eval.answer_report import compare

        print(compare(args.runs))
        return 0
    from core.errors import ConfigError
    from eval.answer_report import load_summary
    from eval.paired import as_json, compare_paired, load_rows, paired_table

    if len(args.runs) != 2:
        raise ConfigError(f"--paired compares two runs, got {len(args.runs)}")
    if args.resamples < 100:
        raise ConfigError(f"--resamples {args.resamples}: use at least 100 for a 95 % interval")
    first, second = args.runs
    rows_a, rows_b = load_rows(first), load_rows(second)
    metrics = compare_paired(rows_a, rows_b, resamples=args.resamples)
    if args.json:
        print(json.dumps({"first": str(first), "second": str(second), "n": len(rows_a),
                          "resamples": args.resamples, "metrics": as_json(metrics)}, ensure_ascii=False, indent=1))
        return 0
    labels = [f"{load_summary(d)['model']} ({Path(d).name})" if Path(d).is_dir() else str(d) for d in args.runs]
    print(paired_table(metrics, labels[0], labels[1], len(rows_a), args.resamples))
    return 0
