"""`dossier train sft|reward|dpo|kto|ppo|merge|evaluate|memory|plan|launch` (and `reranker|embedder`, registered by
train_retrieval_cmd). Each recipe step takes --domain and a recipe TOML, plus overrides; handlers import the
training stack only when they run."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from cli.eval_answers_cmd import add_embedding_precision
from core.errors import ConfigError

log = logging.getLogger(__name__)

RECIPE_STEPS = {
    "sft": "supervised fine-tuning (LoRA / QLoRA / full) with the loss on the answers",
    "reward": "reward model (score head) on preference pairs",
    "dpo": "direct preference optimisation on preference pairs (or the service's feedback)",
    "kto": "KTO on answers rated good / bad (or preference pairs)",
    "ppo": "online RL against a trained reward model (trl GRPO; PPOTrainer is gone from trl 1.16)",
}


def register(commands: argparse._SubParsersAction) -> None:
    from cli import train_retrieval_cmd

    train = commands.add_parser("train", help="fine-tune, merge, evaluate and profile the domain models")
    steps = train.add_subparsers(dest="train_command", required=True, metavar="STEP")
    for name, help_text in RECIPE_STEPS.items():
        parser = steps.add_parser(name, help=help_text)
        _recipe_arguments(parser)
        parser.set_defaults(handler=run_recipe_step, step=name)
    _register_merge(steps)
    _register_preferences(steps)
    _register_ship(steps)
    _register_evaluate(steps)
    _register_memory(steps)
    _register_plan(steps)
    _register_launch(steps)
    train_retrieval_cmd.register(steps)


def _recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--domain", required=True)
    parser.add_argument("--recipe", required=True, type=Path, help="a recipe TOML (shipped: training/configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a recipe value, e.g. --set train.learning_rate=1e-4 (repeatable)")
    parser.add_argument("--model", help="base model: registry name, local path or hub id (= --set train.model=)")
    parser.add_argument("--max-steps", type=int, help="= --set train.max_steps=N")
    parser.add_argument("--method", choices=("lora", "qlora", "full"), help="= --set train.method=")
    parser.add_argument("--feedback", action="store_true", help="train on the service's rated answers")
    parser.add_argument("--output", type=Path, help="run directory (default <workspace>/domains/D/runs/NAME-TIME)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    parser.add_argument("--no-retrieval", action="store_true", help="rag SFT: fallback passages, not the index")


def _overrides(args: argparse.Namespace) -> list[str]:
    extra = list(args.overrides)
    if args.model:
        extra.append(f"train.model={json.dumps(args.model)}")
    if args.max_steps is not None:
        extra.append(f"train.max_steps={args.max_steps}")
    if args.method:
        extra.append(f'train.method="{args.method}"')
    if args.feedback:
        extra.append('data.source="feedback"')
    return extra


def _load(args: argparse.Namespace):
    return _domain_recipe(args.domain, args.recipe, _overrides(args))


def _domain_recipe(domain: str, recipe_path: Path, overrides: list[str]):
    from domains import load_domain
    from training.args import load_recipe

    cfg = load_domain(domain)
    recipe = load_recipe(recipe_path, overrides)
    if recipe.domain and recipe.domain != cfg.name:
        raise ConfigError(f"recipe {recipe_path} is for domain {recipe.domain!r}, not {cfg.name!r}")
    return cfg, recipe


def indexed_retriever(cfg, index_dir: Path | None = None):
    """The domain's hybrid retriever (or one over `index_dir`) when the index exists, else None (recipes then use
    their fallback)."""
    from core.paths import index_root

    root = index_dir or index_root(cfg.name)
    if not ((root / "current").exists() or (root / "manifest.json").exists() or index_dir is not None):
        log.warning("%s: no index (dossier index build --domain %s); passages from the fallback", cfg.name, cfg.name)
        return None
    from rag.build_retrieval import build_retriever

    return build_retriever(cfg, index_dir=index_dir)


def run_recipe_step(args: argparse.Namespace) -> int:
    cfg, recipe = _load(args)
    if recipe.task != args.step:
        raise ConfigError(f"recipe {args.recipe} is a {recipe.task!r} recipe; run: dossier train {recipe.task}")
    if args.resume and not args.output:
        raise ConfigError("--resume needs --output RUN_DIR (the run to continue)")
    from training.generator import dpo, kto, ppo, reward, sft

    match args.step:
        case "sft":
            retriever = None if args.no_retrieval or recipe.data.source != "rag" else indexed_retriever(cfg)
            run, metrics = sft.run_sft(cfg, recipe, args.output, args.resume, retriever)
        case "reward":
            run, metrics = reward.run_reward(cfg, recipe, args.output, args.resume)
        case "dpo":
            run, metrics = dpo.run_dpo(cfg, recipe, args.output, args.resume)
        case "kto":
            run, metrics = kto.run_kto(cfg, recipe, args.output, args.resume)
        case _:
            run, metrics = ppo.run_ppo(cfg, recipe, args.output, args.resume)
    print(json.dumps({"run": str(run), **{k: metrics.get(k) for k in ("steps", "first_loss", "last_loss",
                      "train_runtime", "cpu_time_s", "peak_rss_mib", "trainable_params")}}, ensure_ascii=False))
    return 0


def _register_merge(steps: argparse._SubParsersAction) -> None:
    parser = steps.add_parser("merge", help="fold a run's LoRA adapter into the base and check the logits match")
    parser.add_argument("--domain", required=True)
    parser.add_argument("--run", required=True, type=Path, help="a training run directory (with adapter/)")
    parser.add_argument("--output", type=Path, help="default RUN/merged")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--tolerance", type=float, help="max abs logit difference allowed (default by precision)")
    parser.add_argument("--prompts", type=int, default=4, help="check on this many eval-set questions")
    parser.set_defaults(handler=run_merge)


def run_merge(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from domains import load_domain
    from eval.evalsets import load_evalset
    from training.export.merge import merge_adapter
    from training.run_dir import CONFIG, read_json

    cfg = load_domain(args.domain)
    config = read_json(args.run / CONFIG)
    texts = [r.query[:64] for r in load_evalset(cfg, cfg.evalsets[0].name, require_gold=False,
                                                limit=args.prompts).records] if cfg.evalsets else ["hello"]
    report = merge_adapter(config["base_model"], args.run / "adapter", args.output or args.run / "merged", texts,
                           args.precision, args.tolerance)
    print(json.dumps(asdict(report), ensure_ascii=False))
    return 0


def _reply_arguments(parser: argparse.ArgumentParser, out_help: str) -> None:
    """What `preferences` and `distill` share: the prompts (a RAG-SFT recipe's) and the model whose replies count."""
    parser.add_argument("--domain", required=True)
    parser.add_argument("--recipe", required=True, type=Path, help="the domain's RAG-SFT recipe (its examples)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--model", default="base", help="whose replies are judged: base (default), tuned, or a "
                        "LoRA adapter dir")
    parser.add_argument("--limit", type=int, default=0, help="only the first N prompts (after the seeded shuffle)")
    parser.add_argument("--out", required=True, type=Path, help=out_help)
    parser.add_argument("--cache", type=Path, help="reply cache (default OUT.replies.jsonl): a rerun resumes; the "
                        "two steps can share one")
    add_embedding_precision(parser)


def _register_preferences(steps: argparse._SubParsersAction) -> None:
    parser = steps.add_parser("preferences", help="DPO pairs on the product's prompt: a RAG-SFT recipe's targets "
                              "against the replies of the model being improved, scored by the citation check")
    _reply_arguments(parser, "the preference JSONL to write")
    parser.add_argument("--chosen", choices=("target", "corrected"), default="target",
                        help="the better side of a reply faulted for its citations: the recipe's target, or the "
                        "reply itself with the faulted claims fixed or left out (on-policy)")
    parser.set_defaults(handler=run_preferences)
    parser = steps.add_parser("distill", help="SFT examples on the product's prompt from the model's own replies, "
                              "with what the citation check faults taken out (rejection-sampling fine-tuning)")
    _reply_arguments(parser, "the messages JSONL to write (an SFT recipe reads it with data.source = \"file\")")
    parser.add_argument("--pasted", choices=("keep", "drop", "reference", "span"), default="keep",
                        help="a corrected reply that is mostly a verbatim copy of its passages: keep it, drop it, "
                        "train on the recipe's reference target instead, or (span) train every answerable prompt "
                        "whose reply does not state the reference briefly on the passage clauses holding it, cited "
                        "(for extraction sets such as FinQA)")
    parser.set_defaults(handler=run_distill)


def _judged_replies(args: argparse.Namespace):
    """(domain, recipe, tokenizer, retriever, the cached generator, its parameters) for a reply-judging step."""
    from domains.config import with_embedding_precision
    from eval.answer_cache import CachingGenerator
    from rag.build_generation import build_generator, generator_identity
    from rag.generator_choice import with_generator
    from rag.pipeline import generation_params
    from training.model_io import load_tokenizer
    from training.run_steps import base_model_ref

    # --model here names whose replies are judged, not the recipe's base model: only --set overrides the recipe
    cfg, recipe = _domain_recipe(args.domain, args.recipe, list(args.overrides))
    cfg = with_embedding_precision(cfg, args.embedding_precision)
    answering = with_generator(cfg, args.model)
    generator = build_generator(answering)
    cache = CachingGenerator(generator, args.cache or args.out.with_suffix(".replies.jsonl"),
                             generator_identity(answering))
    return (cfg, recipe, load_tokenizer(base_model_ref(cfg, recipe)), indexed_retriever(cfg), cache.load(),
            generation_params(answering), generator.name)


def run_preferences(args: argparse.Namespace) -> int:
    from collections import Counter

    from training.generator.rag_preferences import preference_rows, write_jsonl_rows

    cfg, recipe, tokenizer, retriever, generator, params, name = _judged_replies(args)
    counts: Counter[str] = Counter()
    rows = preference_rows(cfg, recipe, tokenizer, retriever, generator, params, args.limit, counts,
                           chosen=args.chosen)
    n = write_jsonl_rows(rows, args.out)
    print(json.dumps({"pairs": n, "out": str(args.out), "counts": dict(counts), "generator": name},
                     ensure_ascii=False))
    return 0


def run_distill(args: argparse.Namespace) -> int:
    from collections import Counter

    from training.generator.rag_preferences import write_jsonl_rows
    from training.generator.self_distill import distilled_rows

    cfg, recipe, tokenizer, retriever, generator, params, name = _judged_replies(args)
    counts: Counter[str] = Counter()
    n = write_jsonl_rows(distilled_rows(cfg, recipe, tokenizer, retriever, generator, params, args.limit, counts,
                                        args.pasted), args.out)
    print(json.dumps({"examples": n, "out": str(args.out), "counts": dict(counts), "generator": name},
                     ensure_ascii=False))
    return 0


def _register_ship(steps: argparse._SubParsersAction) -> None:
    parser = steps.add_parser("ship", help="make a run's LoRA adapter the domain's tuned generator (copied into "
                              "domains/D/models/generator-lora, pinned in domain.toml)")
    parser.add_argument("--domain", required=True)
    parser.add_argument("--run", required=True, type=Path, help="a training run directory (with adapter/)")
    parser.set_defaults(handler=run_ship)


def run_ship(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from domains import load_domain
    from models.ship_adapter import ship_adapter

    cfg = load_domain(args.domain)
    folder, sha256 = ship_adapter(args.run, cfg.root, "dossier " + shlex.join(sys.argv[1:]))
    print(json.dumps({"domain": cfg.name, "adapter": str(folder), "sha256": sha256}, ensure_ascii=False))
    return 0


def _register_evaluate(steps: argparse._SubParsersAction) -> None:
    parser = steps.add_parser("evaluate", help="score the base and the tuned model on a held-out task")
    parser.add_argument("--domain", required=True)
    parser.add_argument("--task", required=True, choices=("charges", "cited_answer"))
    parser.add_argument("--run", required=True, type=Path, help="a training run directory")
    parser.add_argument("--file", type=Path, help="score on this JSONL (same schema) instead of the test split")
    parser.add_argument("--limit", type=int, default=0, help="only the first N examples")
    parser.add_argument("--retrieval", action="store_true", help="put the top passages of the index in the prompt")
    parser.add_argument("--index-dir", type=Path, help="--retrieval: this index (root or version) instead of the "
                        "domain's, e.g. an `dossier eval index` gold-pool index")
    parser.add_argument("--models", default="base,tuned", help="which to score (replies are cached per model)")
    parser.add_argument("--json", action="store_true", help='print only {"task","n","base","tuned"} on stdout')
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from domains import load_domain
    from training.generator.evaluate import evaluate_run, gain_table

    cfg = load_domain(args.domain)
    retriever = None
    if args.retrieval:
        retriever = indexed_retriever(cfg, args.index_dir)
        if retriever is None:
            raise ConfigError(f"--retrieval: no index for {cfg.name}; build it with: dossier index build "
                              f"--domain {cfg.name}")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models or set(models) - {"base", "tuned"}:
        raise ConfigError.invalid_choice("--models", args.models, ["base", "tuned", "base,tuned"])
    result = evaluate_run(cfg, args.run, args.task, args.file, args.limit, retriever, models)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    elif len(models) == 2:
        metric = next(iter(result["base"]))
        print(gain_table([(args.task + (" + retrieval" if args.retrieval else ""), result)], metric))
    else:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def _register_memory(steps: argparse._SubParsersAction) -> None:
    parser = steps.add_parser("memory", help="peak memory of full fine-tuning vs LoRA vs QLoRA (+ a plot)")
    parser.add_argument("--domain", required=True)
    parser.add_argument("--recipe", required=True, type=Path, help="an sft recipe TOML")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--model", help="base model (= --set train.model=)")
    parser.add_argument("--methods", default="full,lora,qlora")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--output", required=True, type=Path, help="where memory_report.json / memory.png go")
    parser.set_defaults(handler=run_memory, max_steps=None, method=None, feedback=False)


def run_memory(args: argparse.Namespace) -> int:
    from training.generator.memory_report import format_table, memory_report

    cfg, recipe = _load(args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    rows = memory_report(cfg.name, recipe, args.output, methods, args.steps)
    print(format_table(rows))
    print(f"plot: {args.output / 'memory.png'}", file=sys.stderr)
    return 0


def _register_plan(steps: argparse._SubParsersAction) -> None:
    parser = steps.add_parser("plan", help="check a recipe without training: model shape, data in tokens, steps and "
                              "the estimated peak memory on the device it is meant for")
    _recipe_arguments(parser)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="the device the run is planned for")
    parser.add_argument("--processes", type=int, default=1, help="data-parallel processes (GPUs)")
    parser.add_argument("--budget-mib", type=float, default=0, help="warn when the estimated peak is above this")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(handler=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    from training.plan import format_plan, plan_recipe

    cfg, recipe = _load(args)
    retriever = None if args.no_retrieval or recipe.data.source != "rag" else indexed_retriever(cfg)
    plan = plan_recipe(cfg, recipe, args.device, args.processes, args.budget_mib, retriever)
    print(json.dumps(plan.as_dict(), ensure_ascii=False, indent=2) if args.json else format_plan(plan))
    return 0


def _register_launch(steps: argparse._SubParsersAction) -> None:
    parser = steps.add_parser("launch", help="run a step under `accelerate launch` (DDP, DeepSpeed, FSDP)",
                              description="e.g. dossier train launch --accelerate-config ddp --dry-run -- "
                                          "sft --domain legal --recipe training/configs/sft_legal_charges.toml")
    parser.add_argument("--accelerate-config", required=True,
                        help="ddp, deepspeed_zero2, deepspeed_zero3, fsdp, or a path to an accelerate YAML")
    parser.add_argument("--num-processes", type=int, default=0, help="processes (GPUs); default from the config")
    parser.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    parser.add_argument("step_args", nargs=argparse.REMAINDER, help="the step and its arguments (after --)")
    parser.set_defaults(handler=run_launch)


def run_launch(args: argparse.Namespace) -> int:
    from training.launch import accelerate_command, launch

    step_args = args.step_args[1:] if args.step_args[:1] == ["--"] else args.step_args
    shown, code = launch(accelerate_command(args.accelerate_config, step_args, args.num_processes), args.dry_run)
    print(shown)
    return code
