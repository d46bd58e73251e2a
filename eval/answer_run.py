"""`dossier eval answers`: the product's own pipeline answers a set's questions, and every answer is scored.

With retrieval, each question goes through `RagPipeline.answer`: the same rewrite, retrieval, abstention, prompt,
generation and citation check as `POST /v1/ask` (a dialogue set's earlier turns are the conversation history, so a
follow-up is rewritten as the service would). Without retrieval (`--no-retrieval`) the generator gets the bare
question (after those turns) and its chat template's own system prompt: what the evidence adds.

Per question (one JSONL row): the question, the hits with their stage scores, the prompt sent, the answer, its
citations and unsupported sentences, every score and the timings. Scores (eval.answer_metrics, eval.metrics):
- mcq: the parsed option (stated rule) and exact-set accuracy; unparseable replies are counted and scored wrong;
- reference answers: character F1 and ROUGE-L against the reference, markers removed;
- retrieval-backed answers: citation precision (rag.citations: the cited passage supports the sentence),
  citation coverage (claim sentences carrying a valid citation), evidence recall (a gold document among the cited);
- abstention, when the run mixes in the unanswerable set: precision / recall / F1 of abstaining (the pipeline's
  threshold abstention, or a reply that says the evidence does not answer) and the false refusal rate.
Every mean is over the rows where the score is defined; the counts behind each are in the summary.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.protocols import Message
from eval.answer_cache import HidingRetriever
from eval.answer_items import AnswerItem
from eval.answer_metrics import (
    abstention_recall_by_source,
    abstention_scores,
    choice_correct,
    evidence_recall,
    is_refusal,
    mean,
    parse_choice,
)
from eval.metrics import char_f1, reference_contained, rouge_l
from rag.citations import MARKER
from rag.pipeline import RagPipeline
from rag.prompting import answer_messages, evidence_for

log = logging.getLogger(__name__)

ROWS = "rows.jsonl"
SUMMARY = "summary.json"


@dataclass(frozen=True, slots=True)
class RunSpec:
    """What a run is: recorded as config.json, and what names its directory (the same command resumes it)."""

    domain: str
    evalset: str
    splits: tuple[str, ...]
    limit: int
    model: str  # "base" or a model path
    generator: str  # the generator's name (backend and model)
    retrieval: bool
    unanswerable_per_source: int = 0
    skipped_records: int = 0  # records of the set without a question or an answer
    focus_sentences: int = 0  # evidence passages shown as their N sentences nearest the question; 0 = whole

    @property
    def tag(self) -> str:
        model = "base" if self.model == "base" else Path(self.model).name
        mode = "rag" if self.retrieval else "closed"
        mixed = f"-u{self.unanswerable_per_source}" if self.unanswerable_per_source else ""
        focus = f"-focus{self.focus_sentences}" if self.focus_sentences else ""
        return f"{self.domain}-{self.evalset}-{model}-{mode}{focus}{mixed}-{'+'.join(self.splits)}"


def _hit_row(hit: Any) -> dict[str, Any]:
    return {"chunk_id": hit.chunk.chunk_id, "doc_id": hit.chunk.doc_id, "title": hit.chunk.title,
            "score": round(float(hit.score), 4), "stage_scores": {k: round(float(v), 4) for k, v in
                                                                   hit.stage_scores.items()}}


def _rag_answer(pipeline: RagPipeline, item: AnswerItem) -> dict[str, Any]:
    if item.hidden_ids:
        hiding = HidingRetriever(pipeline.retriever, item.hidden_ids, pipeline.cfg.retrieval.final_k)
        pipeline = RagPipeline(pipeline.cfg, hiding, pipeline.generator)
    answer = pipeline.answer(item.question, _history(item))
    prompt, contexts = None, []
    generated = answer.trace.get("generated")  # an abstention after generating: the model declined or said nothing
    if not answer.abstained or generated is not None:
        evidence = evidence_for(pipeline.cfg.generation, answer.hits, answer.trace["query"])
        messages = answer_messages(pipeline.cfg.prompts, evidence, answer.trace["query"], _history(item))
        prompt = [asdict(m) for m in messages]
        if not answer.abstained:
            contexts = [hit.chunk.text for hit in evidence.hits]  # the passages the model was shown, for a judge
    citations = answer.trace.get("citations") or {}
    return {
        "answer": answer.text, "pipeline_abstained": answer.abstained, "abstain_reason": answer.abstain_reason,
        "hits": [_hit_row(h) for h in answer.hits], "prompt": prompt, "contexts": contexts, "generated": generated,
        "citations": [asdict(c) for c in answer.citations],
        "unsupported": citations.get("unsupported_sentences", []),
        "citation_precision": citations.get("precision"), "citation_coverage": citations.get("coverage"),
        "citation_precision_as_generated": citations.get("precision_as_generated", citations.get("precision")),
        "markers_repointed": len(citations.get("repointed", [])),
        "copied_share": citations.get("copied_share"), "pasted": citations.get("pasted"),
        "cited_doc_ids": sorted({c.doc_id for c in answer.citations}),
        "timings_ms": dict(answer.trace.get("timings_ms", {})),
    }


def _history(item: AnswerItem) -> list[Message]:
    return [Message(role, content) for role, content in item.history]  # type: ignore[arg-type]


def _closed_book_answer(pipeline: RagPipeline, item: AnswerItem) -> dict[str, Any]:
    messages = [*_history(item), Message("user", item.question)]
    t0 = time.perf_counter()
    reply = pipeline.generator.generate(messages, pipeline.params)
    ms = round((time.perf_counter() - t0) * 1000, 2)
    return {"answer": reply.strip(), "pipeline_abstained": False, "abstain_reason": "", "hits": [],
            "prompt": [asdict(m) for m in messages], "contexts": [], "citations": [], "unsupported": [],
            "citation_precision": None, "citation_coverage": None, "citation_precision_as_generated": None,
            "markers_repointed": 0, "copied_share": None, "pasted": None, "cited_doc_ids": [],
            "timings_ms": {"generate": ms, "total": ms}}


def score_row(item: AnswerItem, found: Mapping[str, Any]) -> dict[str, Any]:
    """The item's scores from what the run found for it (the keys `_rag_answer` writes)."""
    text = MARKER.sub("", found["answer"])
    abstained = bool(found["pipeline_abstained"]) or is_refusal(found["answer"])
    scores: dict[str, Any] = {"abstained": abstained}
    if item.kind == "mcq":
        picked = None if found["pipeline_abstained"] else parse_choice(found["answer"], item.options)
        scores |= {"picked": "".join(sorted(picked)) if picked else None, "unparseable": picked is None,
                   "mcq_correct": choice_correct(picked, item.reference)}
    elif item.kind == "reference":
        scores |= {"char_f1": char_f1(text, item.reference), "rouge_l": rouge_l(text, item.reference),
                   "reference_contained": reference_contained(text, item.reference)}
    if not found["pipeline_abstained"] and found["hits"]:
        scores["evidence_recall"] = evidence_recall(found["cited_doc_ids"], item.gold_ids)
    return scores


def run_items(pipeline: RagPipeline, items: Sequence[AnswerItem], retrieval: bool, rows_path: Path) -> list[dict]:
    """Answer and score every item, appending one row per item to `rows_path` as it is done."""
    from tqdm import tqdm

    answer = _rag_answer if retrieval else _closed_book_answer
    rows = []
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    with rows_path.open("w", encoding="utf-8") as out:
        for item in tqdm(items, desc=f"answers {pipeline.domain}", unit="q"):
            found = answer(pipeline, item)
            row = {"id": item.item_id, "source": item.source, "kind": item.kind, "question": item.question,
                   "reference": item.reference, "gold_ids": list(item.gold_ids), **found, **score_row(item, found)}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            rows.append(row)
    return rows


def write_rows(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Rewrite the run's rows (after a judge added its scores to them)."""
    with path.open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _rate(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    return mean([float(r[key]) if r.get(key) is not None else None for r in rows])


def _gold_retrieved(row: Mapping[str, Any]) -> bool:
    return bool({hit["doc_id"] for hit in row["hits"] or ()} & set(row["gold_ids"]))


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The run's metrics (each a mean over the rows where it is defined) and the counts behind them."""
    answerable = [r for r in rows if r["kind"] != "unanswerable"]
    answered = [r for r in answerable if not r["pipeline_abstained"]]
    mcq = [r for r in answerable if r["kind"] == "mcq"]
    with_gold = [r for r in answerable if r.get("gold_ids")]
    metrics: dict[str, Any] = {
        "mcq_accuracy": _rate(mcq, "mcq_correct"), "mcq_unparseable": _rate(mcq, "unparseable"),
        "char_f1": _rate(answerable, "char_f1"), "rouge_l": _rate(answerable, "rouge_l"),
        "reference_contained": _rate(answerable, "reference_contained"),
        "citation_precision": _rate(answered, "citation_precision"),
        "citation_coverage": _rate(answered, "citation_coverage"),
        # what the model wrote, before rag.citation_repair moved markers to the passage holding the sentence
        "citation_precision_as_generated": _rate(answered, "citation_precision_as_generated"),
        "repointed_per_answer": mean([float(r.get("markers_repointed", 0)) for r in answered]),
        "cites_rate": mean([float(bool(r["citations"])) for r in answered]) if any(r["hits"] for r in answered)
        else None,
        "evidence_recall": _rate(answered, "evidence_recall"),
        "unsupported_per_answer": mean([float(len(r["unsupported"])) for r in answered]),
        # a pasted passage always passes the citation check, so precision alone cannot tell quoting from answering:
        # the share of answers that are mostly word-for-word copies of their passages (rag/paste.py), and the mean
        # copied share (rows written before 2026-12-05 carry neither)
        "pasted_rate": _rate(answered, "pasted"),
        "copied_share": _rate(answered, "copied_share"),
        # answerable questions the pipeline did not answer (below the threshold, declined, or markers alone): the
        # metrics above are over the answered ones only, so this says how many they leave out
        "false_refusal_rate": mean([float(r["abstained"]) for r in answerable]),
        # of the answerable questions whose gold the set names, those refused although a gold passage was among the
        # hits: the refusals that lost an answer the evidence held, apart from those where retrieval had missed
        "false_refusal_rate_gold_retrieved": mean([float(r["abstained"] and _gold_retrieved(r)) for r in with_gold])
        if with_gold else None,
    }
    if any(r["kind"] == "unanswerable" for r in rows):
        metrics |= abstention_scores([r["kind"] == "unanswerable" for r in rows], [r["abstained"] for r in rows])
        unanswerable = [r for r in rows if r["kind"] == "unanswerable"]
        metrics |= abstention_recall_by_source([r["source"] for r in unanswerable],
                                               [r["abstained"] for r in unanswerable])
    generate_ms = [r["timings_ms"]["generate"] for r in rows if "generate" in r["timings_ms"]]
    counts = {"n": len(rows), "answerable": len(answerable), "unanswerable": len(rows) - len(answerable),
              "mcq": len(mcq), "answered": len(answered),
              "with_precision": sum(r["citation_precision"] is not None for r in answered),
              "with_gold": sum(r.get("evidence_recall") is not None for r in answered)}
    timing = {"generate_ms_p50": statistics.median(generate_ms) if generate_ms else None,
              "generate_s_total": round(sum(generate_ms) / 1000, 1)}
    return {"metrics": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()},
            "counts": counts, "timing": timing}
