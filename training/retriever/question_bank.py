"""`dossier train bank --domain D`: the question bank (retrieval/question_bank.py) from the TRAIN split of the domain's
retrieval sets (or the named retrieval / QA sets): each train question, embedded by the domain's own query embedder
(its query adapter included, as a served question is), with its gold documents. Dev and test questions never enter
it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from domains.config import DomainConfig
from retrieval.question_bank import QuestionBank
from training.retriever.retrieval_data import examples

log = logging.getLogger(__name__)


# sets whose records can name the documents that answer them: retrieval sets, and QA sets whose answers cite
# documents (LawBench consultation: the 法律依据 of each answer, mapped to the statutes)
BANK_KINDS = ("retrieval", "qa")


def bank_sets(cfg: DomainConfig, names: Sequence[str]) -> list[str]:
    """The named sets (retrieval or QA sets), or every retrieval set of the domain."""
    usable = [s.name for s in cfg.evalsets if s.kind in BANK_KINDS]
    chosen = list(names) or [s.name for s in cfg.evalsets if s.kind == "retrieval"]
    unknown = [n for n in chosen if n not in usable]
    if unknown:
        raise ConfigError(f"question bank: {', '.join(unknown)} is not a retrieval or QA set of {cfg.name} "
                          f"(choose from {', '.join(usable)})")
    return chosen


def build_bank(cfg: DomainConfig, sets: Sequence[str], embedder: Any) -> tuple[QuestionBank, dict[str, int]]:
    """(the bank, train questions taken per set). `embedder`: the domain's loaded query embedder."""
    questions: list[str] = []
    gold: list[tuple[str, ...]] = []
    counts: dict[str, int] = {}
    for name in sets:
        train = [ex for ex in examples(cfg, name, "train") if ex.gold_ids]
        counts[name] = len(train)
        questions += [ex.query for ex in train]
        gold += [tuple(ex.gold_ids) for ex in train]
    if not questions:
        raise ConfigError(f"question bank: the train splits of {', '.join(sets)} hold no question with gold documents")
    vectors = np.asarray(embedder.embed(questions, role="query"), dtype=np.float32)
    log.info("question bank: %d train questions from %s", len(questions), counts)
    return QuestionBank(cfg.models.embedder, vectors, tuple(gold), tuple(f"{n}:train" for n in sets)), counts


def write_bank(cfg: DomainConfig, sets: Sequence[str], out: Path | None = None) -> tuple[Path, dict[str, int]]:
    """Build the bank with the domain's embedder and write it to `out` (default: the file domain.toml names, or
    models/question_bank.npz in the domain folder)."""
    from rag.build_retrieval import build_embedder

    path = out or cfg.path(cfg.retrieval.question_bank or "models/question_bank.npz")
    bank, counts = build_bank(cfg, bank_sets(cfg, sets), build_embedder(cfg).load())
    return bank.save(path), counts
