"""RAG-style SFT: the product's own prompt (question + numbered evidence) -> an answer that cites it with [n].

The prompt is built by `rag.prompting`, the code the service runs: the domain's system prompt and `answer`
template from its domain.toml, the evidence numbered, cut to `[generation] context_chars` and focused where the
domain says so (`focus_sentences`) by `evidence_for`.
A training example's prompt is byte for byte the one the pipeline sends for the same question and evidence
(tests/training/generator/test_rag_sft.py), so a tuned model learns the prompt it will be served.

Examples come from a domain eval set with gold doc ids and a reference answer (legal: `lawbench_consultation`),
train / dev splits only. Evidence, in this order of preference:

1. a retriever (the domain's index via rag.build_retrieval, handed in by the CLI): its top `data.passages` hits,
   as the pipeline would see them. With `data.insert_gold = true` a gold document the retriever missed takes a
   seeded slot in place of the last hit; the first adapters were trained that way (legal with it always last) and
   learned that a supporting passage is always there: on the test split, where retrieval misses, they wrote
   answers under citations their passages do not support (eval/README.md);
2. the fallback when no index exists: the gold articles plus negatives sampled from the declared JSONL corpus
   (seeded by the record id), shuffled deterministically.

The target is the reference answer's supported sentences, each cited (cut at `data.answer_stop`, without
`data.answer_prefix`), then, with `data.basis_after`, the reference's legal basis quoted from its passages.
`cited_answer_examples` builds the same prompts on the test split for `dossier train evaluate --task cited_answer`,
scored with the product's citation check (`rag.citations.cite`).
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core.protocols import Message, Retriever
from core.records import Chunk, Hit
from domains.config import DomainConfig
from eval.evalsets import EvalRecord, load_evalset, read_jsonl
from eval.metrics import rouge_l
from rag.abstention import refusal_sentence
from rag.citations import cite, cited_markers
from rag.prompting import Evidence, answer_messages, evidence_for
from training.args import Recipe
from training.formatting import FormatReport, RecordError, TokenizedChat, tokenize_chat
from training.generator.charges import truncate_tokens
from training.generator.cited_targets import cited_basis, cited_reference, clean_reference
from training.generator.passages import top_hits

log = logging.getLogger(__name__)

CORPUS_STAGE = "corpus"  # `Hit.retriever` of a passage taken from the corpus file, not found by a retriever


@dataclass(frozen=True, slots=True)
class RagExample:
    """One question with its evidence and the exact messages the pipeline would send for them."""

    record: EvalRecord
    evidence: Evidence
    messages: tuple[Message, ...]

    @property
    def gold_markers(self) -> list[int]:
        """The [n] of the evidence passages that hold a gold document, in prompt order."""
        return [n for n, hit in enumerate(self.evidence.hits, start=1) if hit.chunk.doc_id in self.record.gold_ids]


def rag_example(cfg: DomainConfig, record: EvalRecord, question: str, hits: Sequence[Hit]) -> RagExample:
    """The pipeline's prompt for `question` when the retriever found `hits` (rag.prompting, no history)."""
    evidence = evidence_for(cfg.generation, hits, question)
    return RagExample(record, evidence, tuple(answer_messages(cfg.prompts, evidence, question)))


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


def _corpus_hit(chunk: Chunk) -> Hit:
    return Hit(chunk, 0.0, CORPUS_STAGE)


def fallback_passages(
    rec: EvalRecord, corpus: Mapping[str, Chunk], ids: Sequence[str], k: int, seed: int
) -> list[Hit]:
    gold = [corpus[g] for g in rec.gold_ids if g in corpus][:k]
    rng = _rng(rec.record_id, seed)
    negatives = [corpus[i] for i in rng.sample(list(ids), min(len(ids), 4 * k)) if i not in rec.gold_ids]
    passages = gold + negatives[: k - len(gold)]
    rng.shuffle(passages)
    return [_corpus_hit(c) for c in passages]


def retrieved_passages(
    rec: EvalRecord, retriever: Retriever, corpus: Mapping[str, Chunk], recipe: Recipe
) -> list[Hit]:
    hits = top_hits(retriever, rec.query, recipe.data.passages, recipe.data.context_filter)
    gold = [_corpus_hit(corpus[g]) for g in rec.gold_ids if g in corpus]
    if recipe.data.insert_gold and gold and not any(h.chunk.doc_id in rec.gold_ids for h in hits):
        # a seeded slot, not always the last: a fixed one would teach the model to cite that number
        hits = hits[: recipe.data.passages - 1]
        hits.insert(_rng(rec.record_id, recipe.data.seed).randrange(len(hits) + 1), gold[0])
    return hits


def reference_answer(rec: EvalRecord, recipe: Recipe) -> str:
    return reference_parts(rec, recipe)[0]


def reference_parts(rec: EvalRecord, recipe: Recipe) -> tuple[str, str]:
    """(the answer, its legal basis): without `data.answer_prefix`, cut at `data.answer_stop`, split at
    `data.basis_after` (the basis is empty when the recipe names none or the reference has none)."""
    text = clean_reference(rec.answer)
    if recipe.data.answer_prefix and text.startswith(recipe.data.answer_prefix):
        text = text[len(recipe.data.answer_prefix) :]
    if recipe.data.answer_stop and recipe.data.answer_stop in text:
        text = text[: text.index(recipe.data.answer_stop)]
    basis = ""
    if recipe.data.basis_after and recipe.data.basis_after in text:
        text, _, basis = text.partition(recipe.data.basis_after)
        basis = basis.lstrip(":：").strip()
    return text.strip(), basis


def _records(cfg: DomainConfig, recipe: Recipe, splits: Sequence[str], file: Path | None,
             limit: int, require_gold: bool) -> list[EvalRecord]:
    """The records of `data.evalset` (from `file` if given) and of each of `data.more_evalsets`, `limit` each."""
    out = []
    for n, name in enumerate((recipe.data.evalset, *recipe.data.more_evalsets)):
        out += load_evalset(cfg, name, file=file if n == 0 else None, splits=frozenset(splits),  # type: ignore[arg-type]
                            require_gold=require_gold, limit=limit or recipe.data.limit).records
    return out


def rag_examples(cfg: DomainConfig, recipe: Recipe, tokenizer: Any, splits: Sequence[str],
                 retriever: Retriever | None, file: Path | None = None, limit: int = 0,
                 require_gold: bool = True, shuffle: bool = False) -> list[RagExample]:
    """Prompts for the records of the recipe's sets; `require_gold=False` keeps records without gold documents
    (an answer target needs a supporting passage, not a gold id). `shuffle` puts the passages in a seeded order
    of their own (see `DataArgs.shuffle_evidence`)."""
    corpus = corpus_chunks(cfg)
    ids = sorted(corpus)
    log.info("rag examples: passages from %s", "the retriever" if retriever else "gold + sampled negatives")
    out = []
    for rec in tqdm(_records(cfg, recipe, splits, file, limit, require_gold), desc="rag examples", unit="q"):
        if retriever is not None:
            hits = retrieved_passages(rec, retriever, corpus, recipe)
        else:
            hits = fallback_passages(rec, corpus, ids, recipe.data.passages, recipe.data.seed)
        if shuffle:
            hits = list(hits)
            _rng(f"order:{rec.record_id}", recipe.data.seed).shuffle(hits)
        question = truncate_tokens(tokenizer, rec.query, recipe.data.max_input_tokens)
        out.append(rag_example(cfg, rec, question, hits))
    return out


def refusal_examples(cfg: DomainConfig, recipe: Recipe, tokenizer: Any,
                     retriever: Retriever | None) -> list[RagExample]:
    """Prompts whose evidence does not answer the question, from the training splits only: questions of the
    other domains, and in-domain questions with their gold documents removed from the hits (the near miss).
    The hand-written off-topic questions are left to evaluation."""
    if retriever is None or recipe.data.refusals <= 0:
        return []
    from eval.answer_items import unanswerable_items

    items = [i for i in unanswerable_items(cfg, frozenset(recipe.data.splits), recipe.data.refusals)  # type: ignore[arg-type]
             if i.source != "offtopic"]
    out = []
    for item in tqdm(items, desc="refusal examples", unit="q"):
        hidden = set(item.hidden_ids)
        found = top_hits(retriever, item.question, recipe.data.passages + len(hidden), {})
        hits = [h for h in found if h.chunk.doc_id not in hidden][: recipe.data.passages]
        record = EvalRecord(item.item_id, item.question, split="train", fields={"source": item.source})
        question = truncate_tokens(tokenizer, item.question, recipe.data.max_input_tokens)
        out.append(rag_example(cfg, record, question, hits))
    return out


def rag_targets(cfg: DomainConfig, recipe: Recipe, tokenizer: Any, retriever: Retriever | None,
                report: FormatReport) -> list[tuple[RagExample, str]]:
    """(example, the reply it teaches), seeded shuffle: answer examples (the reference's supported sentences, cited:
    training.generator.cited_targets) and abstention examples (the domain's refusal sentence). Records that give
    no target are counted in `report`."""
    kept_sentences = dropped_sentences = 0
    targets: list[tuple[RagExample, str]] = []
    for example in rag_examples(cfg, recipe, tokenizer, recipe.data.splits, retriever, require_gold=False,
                                shuffle=recipe.data.shuffle_evidence):
        answer, basis = reference_parts(example.record, recipe)
        if not answer and not basis:
            report.drop("empty_answer", example.record.record_id)
            continue
        parts = [cited_reference(answer, example.evidence, max_chars=recipe.data.max_answer_chars,
                                 style=recipe.data.target_style)]
        if basis:
            parts.append(cited_basis(basis, example.evidence, f"{recipe.data.basis_after}：",
                                     max_chars=recipe.data.max_basis_chars))
        kept_sentences += sum(part.kept for part in parts)
        dropped_sentences += sum(part.dropped for part in parts)
        if not any(part.kept for part in parts):
            report.drop("no_supported_sentence", example.record.record_id)
            continue
        targets.append((example, "\n".join(part.text for part in parts if part.text)))
    refusal = refusal_sentence(cfg.prompts)
    refusals = refusal_examples(cfg, recipe, tokenizer, retriever)
    targets += [(example, refusal) for example in refusals]
    _rng("shuffle", recipe.data.seed).shuffle(targets)
    log.info("rag targets: %d answers, %d refusals; reference sentences kept %d, unsupported and left out %d",
             len(targets) - len(refusals), len(refusals), kept_sentences, dropped_sentences)
    return targets


def rag_chats(cfg: DomainConfig, recipe: Recipe, tokenizer: Any,
              retriever: Retriever | None) -> tuple[list[TokenizedChat], FormatReport]:
    """The RAG-SFT examples (`rag_targets`), tokenized with the loss on the reply."""
    report, chats = FormatReport(), []
    for example, reply in rag_targets(cfg, recipe, tokenizer, retriever, report):
        try:
            chats.append(tokenize_chat(tokenizer, [*example.messages, Message("assistant", reply)],
                                       recipe.train.max_length))
        except RecordError as err:
            report.drop(str(err), example.record.record_id)
            continue
        report.kept += 1
    return chats, report


def gold_citation_share(reply: str, evidence: Evidence, gold_markers: Sequence[int]) -> float | None:
    """Share of the passages a reply cites (read by the product's marker parser) that hold a gold document;
    None when it cites nothing. Not the product's citation precision, which asks whether the citing sentence is
    supported by the passage (`rag.citations.CitationReport.precision`)."""
    cited = cited_markers(reply, evidence)
    return len(cited & set(gold_markers)) / len(cited) if cited else None


def score_row(example: RagExample, reply: str, recipe: Recipe) -> dict[str, Any]:
    report = cite(reply, example.evidence)
    return {"id": example.record.record_id, "reply": reply, "gold_markers": example.gold_markers,
            "citation_precision": report.precision, "unsupported": report.unsupported, "removed": report.removed,
            "gold_citation_share": gold_citation_share(reply, example.evidence, example.gold_markers),
            "rouge_l": rouge_l(reply, reference_answer(example.record, recipe))}


def _mean(rows: Sequence[Mapping[str, Any]], key: str) -> float:
    """100 x the mean of `key` over all rows, a row whose value is None (cites nothing) counting as 0."""
    return 100.0 * sum(row[key] or 0.0 for row in rows) / (len(rows) or 1)


def score_replies(examples: Sequence[RagExample], replies: Sequence[str],
                  recipe: Recipe) -> tuple[dict[str, float], list[dict[str, Any]]]:
    rows = [score_row(example, reply, recipe) for example, reply in zip(examples, replies, strict=True)]
    metrics = {
        "citation_precision": _mean(rows, "citation_precision"),
        "gold_citation_share": _mean(rows, "gold_citation_share"),
        "cites_rate": 100.0 * sum(r["citation_precision"] is not None for r in rows) / (len(rows) or 1),
        "rouge_l": _mean(rows, "rouge_l"),
    }
    return metrics, rows
