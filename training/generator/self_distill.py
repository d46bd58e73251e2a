"""RAG-SFT examples from the model's own replies, corrected by the citation check (rejection-sampling fine-tuning).

The RAG-SFT targets are reference answers in a register the base model does not write; adapters trained toward them
changed the style and lost citation precision, and DPO on the base model's corrected replies moved the text both
sides share (eval/README.md, issue 13). Here the target of every prompt is the model's own reply, with what the
product's checks fault taken out, so what the loss teaches is only the difference:

    an answerable prompt, answered     the reply corrected (`corrected_reply`: a sentence stays where its passage
                                       holds it, is re-cited where another given passage does, goes where none
                                       does); no checkable claim left -> no example
    an answerable prompt, declined     no example (the recipe's target is the other register; counted)
    an unanswerable prompt, declined   the reply as it is
    an unanswerable prompt, answered   the domain's refusal sentence (the recipe's target)

`pasted` says what becomes of a corrected reply that is mostly a verbatim copy of its passages
(`training.generator.pasted_replies`): "keep" it, "drop" it, or train on the recipe's "reference" target instead (the
reference answer's supported sentences, cited): on extraction sets the base model pastes where the reference is a
stock code, and an adapter trained on the pastes learns to paste.

Rows are OpenAI `messages` records (the prompt's turns, then the target), which `data.source = "file"` reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from core.protocols import GenerationParams, Generator, Retriever
from domains.config import DomainConfig
from rag.abstention import model_refused
from rag.prompting import Evidence
from training.args import Recipe
from training.generator.corrected_replies import corrected_reply
from training.generator.pasted_replies import is_pasted
from training.generator.rag_preferences import recipe_replies, reply_refused

PASTED = ("keep", "drop", "reference")


def distilled_target(target: str, reply: str, evidence: Evidence, cfg: DomainConfig,
                     pasted: str = "keep") -> tuple[str | None, str]:
    """(the text to train on or None, how it was obtained) for one prompt whose recipe target is `target`."""
    refused = reply_refused(reply, cfg)
    if model_refused(target, cfg.prompts):
        return (reply, "reply_declined_unanswerable") if refused else (target, "refusal_for_answered_unanswerable")
    if refused:
        return None, "declined_answerable"
    fixed = corrected_reply(reply, evidence)
    if fixed is None:
        return None, "nothing_checkable_left"
    if pasted != "keep" and is_pasted(fixed, evidence):
        return (target, "reference_for_pasted_reply") if pasted == "reference" else (None, "pasted_reply")
    return fixed, "reply_as_written" if fixed == reply else "reply_corrected"


def distilled_rows(cfg: DomainConfig, recipe: Recipe, tokenizer: Any, retriever: Retriever | None,
                   generator: Generator, params: GenerationParams, limit: int = 0,
                   counts: Counter[str] | None = None, pasted: str = "keep") -> Iterator[dict[str, Any]]:
    """One `messages` row per prompt the checks leave a target for; `counts` says where every prompt went."""
    if pasted not in PASTED:
        raise ValueError(f"pasted={pasted!r}: one of {', '.join(PASTED)}")
    counts = counts if counts is not None else Counter()
    for example, target, reply in recipe_replies(cfg, recipe, tokenizer, retriever, generator, params, limit,
                                                 "self-distilled examples"):
        text, source = distilled_target(target, reply, example.evidence, cfg, pasted)
        counts[source] += 1
        if text is None:
            continue
        turns = [{"role": m.role, "content": m.content} for m in example.messages]
        yield {"id": example.record.record_id, "domain": cfg.name, "source": source,
               "messages": [*turns, {"role": "assistant", "content": text}]}
