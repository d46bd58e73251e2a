"""RAG-style SFT: question + numbered passages -> an answer that cites them with [n].

Examples come from a domain eval set with gold doc ids and a reference answer (legal: `lawbench_consultation`),
train / dev splits only. Passages, in this order of preference:

1. a retriever (the domain's index via api.build_retrieval, handed in by the CLI): its top `data.passages`
   chunks; if no gold article was retrieved, the last slot is given to a gold article, so the target never cites
   a passage that does not support it;
2. the fallback when no index exists: the gold articles plus negatives sampled from the declared JSONL corpus
   (seeded by the record id), shuffled deterministically.

The target is the reference answer (cut at `data.answer_stop`, without `data.answer_prefix`) followed by the
markers of the gold passages. `cited_answer_examples` builds the same prompts on the test split for
`dossier train evaluate --task cited_answer` (citation precision, char ROUGE-L).
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.protocols import Message, Retriever
from core.records import Chunk
from domains.config import DomainConfig
from eval.evalsets import EvalRecord, load_evalset, read_jsonl
from eval.metrics import rouge_l
from training.args import Recipe
from training.charges import prompt_messages, truncate_tokens
from training.formatting import FormatReport, RecordError, TokenizedChat, tokenize_chat
from training.passages import format_context, top_chunks

log = logging.getLogger(__name__)
MARKER = re.compile(r"\[(\d+)\]")


def corpus_chunks(cfg: DomainConfig) -> dict[str, Chunk]:
    """Every document of the declared JSONL corpus as one whole-document chunk, by doc id (first one wins)."""
    out: dict[str, Chunk] = {}
    for source in cfg.corpus:
        path = cfg.path(source.path)
        if source.format not in ("jsonl", "auto") or not path.is_file() or ".jsonl" not in path.name:
            continue
        for row in read_jsonl(path):
            doc_id, text = str(row.get(source.id_field, "")), str(row.get(source.text_field) or "")
            if doc_id and text and doc_id not in out:
                title = " ".join(str(row.get(f, "")) for f in source.title_fields).strip()
                out[doc_id] = Chunk(doc_id, doc_id, text, 0, len(text), title=title)
    return out


def _rng(record_id: str, seed: int) -> random.Random:
    return random.Random(int(hashlib.sha256(f"{seed}:{record_id}".encode()).hexdigest()[:12], 16))


def fallback_passages(
    rec: EvalRecord, corpus: Mapping[str, Chunk], ids: Sequence[str], k: int, seed: int
) -> list[Chunk]:
    gold = [corpus[g] for g in rec.gold_ids if g in corpus][:k]
    rng = _rng(rec.record_id, seed)
    negatives = [corpus[i] for i in rng.sample(list(ids), min(len(ids), 4 * k)) if i not in rec.gold_ids]
    passages = gold + negatives[: k - len(gold)]
    rng.shuffle(passages)
    return passages


def retrieved_passages(
    rec: EvalRecord, retriever: Retriever, corpus: Mapping[str, Chunk], recipe: Recipe
) -> list[Chunk]:
    chunks = top_chunks(retriever, rec.query, recipe.data.passages, recipe.data.context_filter)
    if not any(c.doc_id in rec.gold_ids for c in chunks):
        gold = [corpus[g] for g in rec.gold_ids if g in corpus]
        chunks = chunks[: recipe.data.passages - 1] + gold[:1]
    return chunks


def reference_answer(rec: EvalRecord, recipe: Recipe) -> str:
    text = rec.answer.strip()
    if recipe.data.answer_prefix and text.startswith(recipe.data.answer_prefix):
        text = text[len(recipe.data.answer_prefix) :]
    if recipe.data.answer_stop and recipe.data.answer_stop in text:
        text = text[: text.index(recipe.data.answer_stop)]
    return text.strip()


def _examples(cfg: DomainConfig, recipe: Recipe, tokenizer: Any, splits: Sequence[str], retriever: Retriever | None,
              file: Path | None = None, limit: int = 0) -> list[tuple[EvalRecord, list[Chunk], list[Message]]]:
    loaded = load_evalset(cfg, recipe.data.evalset, file=file, splits=frozenset(splits),  # type: ignore[arg-type]
                          limit=limit or recipe.data.limit)
    corpus = corpus_chunks(cfg)
    ids = sorted(corpus)
    log.info("rag examples: passages from %s", "the retriever" if retriever else "gold + sampled negatives")
    out = []
    for rec in loaded.records:
        if retriever is not None:
            passages = retrieved_passages(rec, retriever, corpus, recipe)
        else:
            passages = fallback_passages(rec, corpus, ids, recipe.data.passages, recipe.data.seed)
        question = truncate_tokens(tokenizer, rec.query, recipe.data.max_input_tokens)
        out.append((rec, passages, prompt_messages(recipe.prompts, question, format_context(passages, recipe))))
    return out


def rag_chats(cfg: DomainConfig, recipe: Recipe, tokenizer: Any,
              retriever: Retriever | None) -> tuple[list[TokenizedChat], FormatReport]:
    report, chats = FormatReport(), []
    for rec, passages, turns in _examples(cfg, recipe, tokenizer, recipe.data.splits, retriever):
        markers = "".join(f"[{n}]" for n, c in enumerate(passages, start=1) if c.doc_id in rec.gold_ids)
        answer = reference_answer(rec, recipe)
        try:
            if not markers:
                raise RecordError("no_gold_passage_in_corpus")
            if not answer:
                raise RecordError("empty_answer")
            chats.append(tokenize_chat(tokenizer, [*turns, Message("assistant", answer + markers)],
                                       recipe.train.max_length))
        except RecordError as err:
            report.drop(str(err), rec.record_id)
            continue
        report.kept += 1
    return chats, report


def citation_precision(reply: str, gold_markers: set[int]) -> float | None:
    """Share of the [n] a reply cites that point to a gold passage; None when it cites nothing."""
    cited = {int(m) for m in MARKER.findall(reply)}
    return len(cited & gold_markers) / len(cited) if cited else None


def cited_answer_examples(cfg: DomainConfig, recipe: Recipe, tokenizer: Any, file: Path | None, limit: int,
                          retriever: Retriever | None) -> Any:
    from training.evaluate import TaskExamples

    splits = ("train", "dev", "test") if file else ("test",)
    items = _examples(cfg, recipe, tokenizer, splits, retriever, file=file, limit=limit)

    def score(replies: list[str]) -> tuple[dict[str, float], list[dict[str, Any]]]:
        rows = []
        for (rec, passages, _), reply in zip(items, replies, strict=True):
            gold = {n for n, c in enumerate(passages, start=1) if c.doc_id in rec.gold_ids}
            precision = citation_precision(reply, gold)
            rows.append({"id": rec.record_id, "reply": reply, "gold_markers": sorted(gold),
                         "citation_precision": precision, "rouge_l": rouge_l(reply, reference_answer(rec, recipe))})
        n = len(rows) or 1
        metrics = {
            "citation_precision": 100.0 * sum(r["citation_precision"] or 0.0 for r in rows) / n,
            "cites_rate": 100.0 * sum(r["citation_precision"] is not None for r in rows) / n,
            "rouge_l": 100.0 * sum(r["rouge_l"] for r in rows) / n,
        }
        return metrics, rows

    return TaskExamples([turns for _, _, turns in items], score, max_new_tokens=160)
