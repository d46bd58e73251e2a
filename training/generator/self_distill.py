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
(`rag.paste`): "keep" it, "drop" it, or train on the recipe's "reference" target instead (the
reference answer's supported sentences, cited): on extraction sets the base model pastes where the reference is a
stock code, and an adapter trained on the pastes learns to paste. "span" is for those extraction sets: every answerable
prompt whose reply does not already state the reference in its own short words trains on the passage's shortest clause
run holding the reference, cited (`training.generator.answer_span`), when a given passage holds it: a pasted reply,
one with nothing checkable left, one stating another value, one declining. The answer stays the passage's words, so
the model learns to copy the value's clause rather than to write a value (the reference route taught it to write
values no passage holds).

Rows are OpenAI `messages` records (the prompt's turns, then the target), which `data.source = "file"` reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from core.protocols import GenerationParams, Generator, Retriever
from domains.config import DomainConfig
from eval.metrics import reference_contained
from rag.abstention import model_refused
from rag.citations import cited_markers
from rag.paste import is_pasted
from rag.prompting import Evidence
from training.args import Recipe
from training.generator.answer_span import cited_span
from training.generator.corrected_replies import corrected_reply
from training.generator.rag_preferences import recipe_replies, reply_refused

PASTED = ("keep", "drop", "reference", "span")


def _span_target(reply: str, fixed: str | None, refused: bool, evidence: Evidence,
                 reference: str) -> tuple[str | None, str] | None:
    """The "span" route's target, or None where the reply (corrected) is kept or dropped as in the other routes."""
    pasted = fixed is not None and is_pasted(fixed, evidence)
    if fixed is not None and not pasted and reference_contained(fixed, reference):
        return None
    span = cited_span(reference, evidence, prefer=sorted(cited_markers(reply, evidence)))
    if span is not None:
        why = ("declined_answerable" if refused else "nothing_checkable_left" if fixed is None
               else "pasted_reply" if pasted else "reply_without_reference")
        return span, f"span_for_{why}"
    return (None, "pasted_reply") if pasted else None


def distilled_target(target: str, reply: str, evidence: Evidence, cfg: DomainConfig,
                     pasted: str = "keep", reference: str = "") -> tuple[str | None, str]:
    """(the text to train on or None, how it was obtained) for one prompt whose recipe target is `target`;
    `reference` is the record's raw answer (the "span" route looks for it in the passages)."""
    refused = reply_refused(reply, cfg)
    if model_refused(target, cfg.prompts):
        return (reply, "reply_declined_unanswerable") if refused else (target, "refusal_for_answered_unanswerable")
    fixed = None if refused else corrected_reply(reply, evidence)
    if pasted == "span":
        chosen = _span_target(reply, fixed, refused, evidence, reference)
        if chosen is not None:
            return chosen
        pasted = "keep"  # a short reply stating the reference, or no passage holding it: as the other routes
    if refused:
        return None, "declined_answerable"
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
        text, source = distilled_target(target, reply, example.evidence, cfg, pasted, example.record.answer)
        counts[source] += 1
        if text is None:
            continue
        turns = [{"role": m.role, "content": m.content} for m in example.messages]
        yield {"id": example.record.record_id, "domain": cfg.name, "source": source,
               "messages": [*turns, {"role": "assistant", "content": text}]}
