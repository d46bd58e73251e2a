"""`dossier train evaluate`: score the base model and a run's tuned model on the same held-out examples.

Tasks:
    charges       charge prediction from CAIL facts (training.generator.charges): accuracy / micro-F1 over the
                  charge set
    cited_answer  the product's RAG prompt -> cited answer (training.generator.rag_sft): the product's citation
                  precision (rag.citations), share of citations on gold passages, char ROUGE-L

Examples are the task's eval set, test split only (eval.splits: the run trained on train / dev), or every record
of `--file` (same schema; the split is not applied, so do not pass a file the run was trained on). Both models
see exactly the same prompts, built with the run's own recipe. With a retriever (`--retrieval`) the prompt also
carries the top passages. Each model's per-example rows go to <run>/eval/<task>[-retrieval]-<model>.jsonl.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.protocols import Message, Retriever
from domains.config import DomainConfig
from models.registry import resolve_model
from training.args import Recipe, recipe_from_dict
from training.generator import charges, rag_sft
from training.generator.generation import generate_replies, load_for_generation
from training.generator.passages import context_block
from training.model_io import load_tokenizer
from training.run_dir import CONFIG, read_json, weights_dir, write_json

log = logging.getLogger(__name__)

TASKS = ("charges", "cited_answer")


@dataclass(frozen=True, slots=True)
class TaskExamples:
    """The prompts both models answer, and how to score the replies: score(replies) -> (metrics, rows)."""

    chats: list[list[Message]]
    score: Callable[[list[str]], tuple[dict[str, float], list[dict[str, Any]]]]
    max_new_tokens: int


def charge_examples(
    cfg: DomainConfig, recipe: Recipe, tokenizer: Any, file: Path | None, limit: int, retriever: Retriever | None
) -> TaskExamples:
    evalset = recipe.data.evalset or "cail2018_charges"
    splits = ("train", "dev", "test") if file else ("test",)
    cases = charges.load_cases(cfg, evalset, splits, file=file, limit=limit)
    vocabulary = sorted({*charges.charge_vocabulary(cfg, evalset), *(c for case in cases for c in case.charges)})
    reader = charges.ChargeReader(vocabulary)
    chats = []
    for case in cases:
        fact = charges.truncate_tokens(tokenizer, case.fact, recipe.data.max_input_tokens)
        context = context_block(retriever, fact, recipe) if retriever is not None else ""
        chats.append(charges.prompt_messages(recipe.prompts, fact, context))

    def score(replies: list[str]) -> tuple[dict[str, float], list[dict[str, Any]]]:
        predicted = [reader.read(r) for r in replies]
        rows = [dict(charges.case_row(c, r, p)) for c, r, p in zip(cases, replies, predicted, strict=True)]
        return charges.score_charges(predicted, [c.charges for c in cases]), rows

    return TaskExamples(chats, score, max_new_tokens=32)


def cited_answer_examples(
    cfg: DomainConfig, recipe: Recipe, tokenizer: Any, file: Path | None, limit: int, retriever: Retriever | None
) -> TaskExamples:
    splits = ("train", "dev", "test") if file else ("test",)
    examples = rag_sft.rag_examples(cfg, recipe, tokenizer, splits, retriever, file=file, limit=limit)

    def score(replies: list[str]) -> tuple[dict[str, float], list[dict[str, Any]]]:
        return rag_sft.score_replies(examples, replies, recipe)

    return TaskExamples([list(e.messages) for e in examples], score, max_new_tokens=160)


def task_examples(
    task: str, cfg: DomainConfig, recipe: Recipe, tokenizer: Any, file: Path | None, limit: int,
    retriever: Retriever | None,
) -> TaskExamples:
    match task:
        case "charges":
            return charge_examples(cfg, recipe, tokenizer, file, limit, retriever)
        case "cited_answer":
            return cited_answer_examples(cfg, recipe, tokenizer, file, limit, retriever)
        case _:
            raise ConfigError.invalid_choice("task", task, TASKS)


def _model_key(model_id: str, weights: Path | None, max_new_tokens: int) -> str:
    """Same model files + same generation length -> the same greedy reply to the same prompt."""
    digest = hashlib.sha256(f"{model_id}|{max_new_tokens}".encode())
    if weights is not None:
        for file in sorted(weights.glob("*.safetensors")):
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _prompt_key(chat: Sequence[Message]) -> str:
    return hashlib.sha256(json.dumps([(m.role, m.content) for m in chat]).encode()).hexdigest()


def _replies(name: str, base: str, weights: Path | None, examples: TaskExamples, cache: Path,
             recipe: Recipe) -> list[str]:
    """Greedy replies; a prompt this model already answered (in `cache`) is not generated again, so a re-run, or a
    run over a subset (--limit), costs nothing."""
    model_key = _model_key(resolve_model(base), weights, examples.max_new_tokens)
    known: dict[str, str] = {}
    if cache.is_file():
        cached = json.loads(cache.read_text(encoding="utf-8"))
        known = dict(cached.get("replies", {})) if cached.get("model_key") == model_key else {}
    keys = [_prompt_key(chat) for chat in examples.chats]
    todo = [i for i, key in enumerate(keys) if key not in known]
    log.info("%s: %d replies cached, %d to generate", name, len(keys) - len(todo), len(todo))
    if todo:
        model, tokenizer = load_for_generation(base, weights, recipe.train.precision, recipe.train.threads)
        new = generate_replies(model, tokenizer, [examples.chats[i] for i in todo], examples.max_new_tokens)
        known.update({keys[i]: reply for i, reply in zip(todo, new, strict=True)})
        write_json(cache, {"model_key": model_key, "replies": known})
    return [known[key] for key in keys]


def _score_model(
    name: str, base: str, weights: Path | None, examples: TaskExamples, out: Path, recipe: Recipe
) -> dict[str, float]:
    replies = _replies(name, base, weights, examples, out.with_suffix(".replies.json"), recipe)
    metrics, rows = examples.score(replies)
    with out.open("w", encoding="utf-8") as f:
        for row, chat in zip(rows, examples.chats, strict=True):
            f.write(json.dumps({**row, "prompt": chat[-1].content}, ensure_ascii=False) + "\n")
    log.info("%s: %s (%d examples, rows in %s)", name, metrics, len(rows), out)
    return metrics


def evaluate_run(
    cfg: DomainConfig, run: Path, task: str, file: Path | None = None, limit: int = 0,
    retriever: Retriever | None = None, models: Sequence[str] = ("base", "tuned"),
) -> dict[str, Any]:
    """{"task", "n", "base": {metric: value}, "tuned": {metric: value}}; also written to <run>/eval/."""
    config = read_json(run / CONFIG)
    recipe = recipe_from_dict(config["recipe"])
    out_dir = run / "eval"
    out_dir.mkdir(exist_ok=True)
    tag = f"{task}{'-retrieval' if retriever is not None else ''}"
    tokenizer = load_tokenizer(config["base_model"], padding_side="left")
    examples = task_examples(task, cfg, recipe, tokenizer, file, limit, retriever)
    if not examples.chats:
        raise ConfigError("no examples to evaluate (empty test split or --file)")
    result: dict[str, Any] = {"task": task, "n": len(examples.chats)}
    for name in models:
        weights = weights_dir(run) if name == "tuned" else None
        result[name] = _score_model(name, config["base_model"], weights, examples, out_dir / f"{tag}-{name}.jsonl",
                                    recipe)
    if len(models) == 2:
        write_json(out_dir / f"{tag}-summary.json", {**result, "retrieval": retriever is not None,
                                                      "file": str(file) if file else None, "limit": limit})
    return result


def gain_table(results: Sequence[tuple[str, dict[str, Any]]], metric: str) -> str:
    """A markdown table: one row per (label, result), base vs tuned and the gain in points."""
    lines = [f"| setting | n | base {metric} | tuned {metric} | gain |", "|---|---|---|---|---|"]
    for label, res in results:
        b, t = res["base"][metric], res["tuned"][metric]
        lines.append(f"| {label} | {res['n']} | {b:.1f} | {t:.1f} | {t - b:+.1f} |")
    return "\n".join(lines)
