"""The questions an answer run asks: a declared eval set's records, and an unanswerable set for abstention.

A set's `kind` decides how its answers are scored: `mcq` (the options are put under the question as
"A. ...", the reply's option is parsed, eval.answer_metrics), `qa` / `retrieval` / `dialogue` with a reference
answer (character F1, ROUGE-L), `classification` (not an answer task: refused).

The unanswerable set of a domain (`unanswerable_items`) mixes three sources, `per_source` questions each, from
the same split as the run: questions of the other domains' retrieval sets, the hand-written off-topic questions
(eval/data/offtopic_queries.jsonl), and in-domain questions whose gold documents are hidden from retrieval (the
hard case: a near miss must not be answered as if it were the evidence).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from domains import available_domains, load_domain
from domains.config import DomainConfig
from eval.calibrate import OFFTOPIC
from eval.evalsets import EvalRecord, load_evalset, read_jsonl
from eval.splits import Split

log = logging.getLogger(__name__)

ANSWER_KINDS = ("mcq", "qa", "retrieval", "dialogue")


@dataclass(frozen=True, slots=True)
class AnswerItem:
    item_id: str
    question: str
    kind: str  # "mcq", "reference" (scored against `reference`), or "unanswerable"
    reference: str = ""  # mcq: the gold letters
    options: tuple[str, ...] = ()  # mcq: the option letters
    gold_ids: tuple[str, ...] = ()
    source: str = ""  # the set, "offtopic", "other:<domain>/<set>" or "hidden-gold:<set>"
    hidden_ids: tuple[str, ...] = ()  # documents the retriever must not return for this question
    history: tuple[tuple[str, str], ...] = ()  # dialogue sets: the (role, content) turns before the question

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"


def mcq_question(record: EvalRecord) -> tuple[str, tuple[str, ...]]:
    """The question with its options under it, and the option letters. Sets without an `options` field carry
    the options inside the question text ("...?A:...;B:..."): their letters are A-D."""
    options = record.fields.get("options")
    if isinstance(options, Mapping) and options:
        lines = [f"{letter}. {text}" for letter, text in sorted(options.items())]
        return record.query + "\n" + "\n".join(lines), tuple(sorted(options))
    return record.query, ("A", "B", "C", "D")


def dialogue_history(value: object) -> tuple[tuple[str, str], ...]:
    """The turns before the last user turn of a chat-valued query field (the question is that last turn)."""
    if not isinstance(value, list) or not value:
        return ()
    turns = [(str(m.get("role")), str(m.get("content") or "")) for m in value if isinstance(m, Mapping)]
    last_user = max((i for i, (role, _) in enumerate(turns) if role == "user"), default=-1)
    return tuple(t for t in turns[:last_user] if t[0] in ("user", "assistant") and t[1].strip())


def set_items(cfg: DomainConfig, evalset: str, splits: frozenset[Split], limit: int = 0,
              file: Path | None = None) -> tuple[list[AnswerItem], int]:
    """The answerable items of a declared set (or of `file` in its schema), and how many records were skipped for
    lacking a question or an answer."""
    spec = cfg.evalset(evalset)
    if spec.kind not in ANSWER_KINDS:
        raise ConfigError(f"eval set {evalset!r} is a {spec.kind} set; answer runs take: {', '.join(ANSWER_KINDS)}")
    if not spec.answer_field:
        raise ConfigError(f"eval set {evalset!r} declares no answer_field: there is nothing to score answers by")
    loaded = load_evalset(cfg, evalset, file=file, splits=splits, require_gold=False, limit=limit)
    items, skipped = [], 0
    for rec in loaded.records:
        if not rec.query.strip() or not rec.answer.strip():
            skipped += 1
            continue
        if spec.kind == "mcq":
            question, letters = mcq_question(rec)
            items.append(AnswerItem(rec.record_id, question, "mcq", rec.answer.strip().upper(), letters,
                                    rec.gold_ids, evalset))
        else:
            items.append(AnswerItem(rec.record_id, rec.query, "reference", rec.answer, (), rec.gold_ids, evalset,
                                    history=dialogue_history(rec.fields.get(spec.query_field))))
    if not items:
        raise ConfigError(f"eval set {evalset!r}: no record with a question ({spec.query_field}) and an answer "
                          f"({spec.answer_field}) in splits {sorted(splits)}; {skipped} skipped")
    if skipped:
        log.warning("eval set %s: %d records without a question or an answer were skipped", evalset, skipped)
    return items, skipped


def _first(records: Sequence[EvalRecord], n: int) -> Sequence[EvalRecord]:
    return [r for r in records if r.query.strip()][:n]


def unanswerable_items(cfg: DomainConfig, splits: frozenset[Split], per_source: int) -> list[AnswerItem]:
    """`per_source` questions from each of: the other domains, off-topic, in-domain with the gold hidden."""
    items: list[AnswerItem] = []
    for other in (load_domain(d) for d in available_domains() if d != cfg.name):
        spec = next((s for s in other.evalsets if s.kind == "retrieval"), None)
        if spec is None:
            continue
        records = load_evalset(other, spec.name, splits=splits, require_gold=False, limit=per_source).records
        source = f"other:{other.name}/{spec.name}"
        items += [AnswerItem(f"{source}#{r.record_id}", r.query, "unanswerable", source=source)
                  for r in _first(records, per_source)]
    offtopic: list[dict[str, Any]] = list(read_jsonl(OFFTOPIC))[:per_source]
    items += [AnswerItem(f"offtopic#{r['id']}", str(r["question"]), "unanswerable", source="offtopic")
              for r in offtopic]
    spec = next((s for s in cfg.evalsets if s.kind in ("retrieval", "qa") and s.gold_field), None)
    if spec is not None:
        records = load_evalset(cfg, spec.name, splits=splits, limit=per_source).records
        source = f"hidden-gold:{spec.name}"
        items += [AnswerItem(f"{source}#{r.record_id}", r.query, "unanswerable", source=source,
                             hidden_ids=r.gold_ids) for r in _first(records, per_source)]
    return items
