"""DPO pairs on the product's own prompt: chosen = the RAG-SFT target (supported sentences, each cited; or the
domain's refusal sentence), rejected = what the model being improved (the base model by default) replies to the
same prompt, kept only where the product's checks find it worse:

    on an answerable prompt  it declines (rag.abstention.model_refused), cites nothing, or a cited sentence is not
                             supported by its passage (rag.citations.cite: precision < 1)
    on an unanswerable one   it answers anyway (neither the refusal sentence nor any refusal wording)

A reply the checks cannot fault gives no pair (counted as `reply_already_good`). With `chosen="corrected"`, a
reply faulted for its citations is paired against itself corrected (`corrected_replies`: the faulted claims fixed
or left out) where a correction exists, so the two sides differ only where the check finds fault; the recipe's
target stays the chosen side of the rest. Rows are written in the
preference format `training.generator.preferences` reads ({"prompt": [turns], "chosen", "rejected"}), with why
the reply lost and its scores, so a DPO recipe trains on them with `data.source = "file"`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core.protocols import GenerationParams, Generator, Retriever
from domains.config import DomainConfig
from eval.answer_metrics import is_refusal
from rag.abstention import model_refused
from rag.citations import cite
from training.args import Recipe
from training.formatting import FormatReport
from training.generator.corrected_replies import corrected_reply
from training.generator.rag_sft import RagExample, rag_targets

log = logging.getLogger(__name__)


def reply_refused(reply: str, cfg: DomainConfig) -> bool:
    """The reply declines: the domain's refusal sentence or any refusal wording."""
    return model_refused(reply, cfg.prompts) or is_refusal(reply)


def recipe_replies(cfg: DomainConfig, recipe: Recipe, tokenizer: Any, retriever: Retriever | None,
                   generator: Generator, params: GenerationParams, limit: int,
                   desc: str) -> Iterator[tuple[RagExample, str, str]]:
    """(example, the recipe's target, the model's reply to the example's prompt) for the recipe's first `limit`
    prompts (all when 0), after its seeded shuffle."""
    targets = rag_targets(cfg, recipe, tokenizer, retriever, FormatReport())
    for example, target in tqdm(targets[: limit or None], desc=desc, unit="prompt"):
        yield example, target, generator.generate(example.messages, params).strip()


def rejection(example: RagExample, target: str, reply: str, cfg: DomainConfig) -> tuple[str, dict[str, Any]] | None:
    """(why the reply loses to the target, its scores), or None when the checks find nothing wrong with it."""
    refused = reply_refused(reply, cfg)
    if model_refused(target, cfg.prompts):
        return None if refused else ("answered_unanswerable", {})
    if refused:
        return "declined_answerable", {}
    report = cite(reply, example.evidence)
    scores = {"citation_precision": report.precision, "citation_coverage": report.coverage}
    if report.precision is None:
        return "cites_nothing", scores
    if report.precision < 1.0:
        return "unsupported_citation", scores
    return None


CHOSEN = ("target", "corrected")


def preference_rows(cfg: DomainConfig, recipe: Recipe, tokenizer: Any, retriever: Retriever | None,
                    generator: Generator, params: GenerationParams, limit: int = 0,
                    counts: Counter[str] | None = None, chosen: str = "target") -> Iterator[dict[str, Any]]:
    counts = counts if counts is not None else Counter()
    for example, target, reply in recipe_replies(cfg, recipe, tokenizer, retriever, generator, params, limit,
                                                 "preference pairs"):
        lost = rejection(example, target, reply, cfg)
        if lost is None:
            counts["reply_already_good"] += 1
            continue
        why, scores = lost
        counts[why] += 1
        better, source = target, "target"
        if chosen == "corrected" and why in ("unsupported_citation", "cites_nothing"):
            fixed = corrected_reply(reply, example.evidence)
            if fixed is not None:
                better, source = fixed, "corrected"
        counts[f"chosen_{source}"] += 1
        yield {"id": example.record.record_id, "domain": cfg.name,
               "prompt": [{"role": m.role, "content": m.content} for m in example.messages],
               "chosen": better, "rejected": reply, "why": why, "chosen_from": source, **scores}


def write_jsonl_rows(rows: Iterator[dict[str, Any]], out: Path) -> int:
    """Write to a temporary file renamed into place: a stopped build leaves no half file (the reply cache keeps
    the generated replies, so running it again is quick)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(out)
    return n
