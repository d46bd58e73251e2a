"""`dossier train bank --domain D`: the question bank (retrieval/question_bank.py) from the TRAIN split of the domain's
retrieval sets (or the named retrieval / QA sets): each train question, embedded by the domain's own query embedder
(its query adapter included, as a served question is), with its gold documents. `--splits train,dev` adds the dev
questions once the bank's settings were chosen on dev (each question records its split, and an evaluation of dev
leaves them out: retrieval/question_bank.py). Test questions never enter it."""

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


def bank_splits(spec: str) -> tuple[str, ...]:
    """'train' or 'train,dev' -> the splits a bank takes, in split order. Test is refused: it is what results are
    reported on."""
    from eval.splits import parse_splits

    splits = parse_splits(spec)
    if "test" in splits:
        raise ConfigError("question bank: the test split never enters a bank (results are reported on it); "
                          "use --splits train or train,dev")
    return tuple(s for s in ("train", "dev") if s in splits)


def build_bank(cfg: DomainConfig, sets: Sequence[str], embedder: Any,
               splits: Sequence[str] = ("train",)) -> tuple[QuestionBank, dict[str, int]]:
    """(the bank, questions taken per set and split, "set:split"). `embedder`: the domain's loaded query embedder."""
    questions: list[str] = []
    gold: list[tuple[str, ...]] = []
    origin: list[str] = []
    counts: dict[str, int] = {}
    for name in sets:
        for split in splits:
            found = [ex for ex in examples(cfg, name, split) if ex.gold_ids]
            counts[f"{name}:{split}"] = len(found)
            questions += [ex.query for ex in found]
            gold += [tuple(ex.gold_ids) for ex in found]
            origin += [split] * len(found)
    if not questions:
        raise ConfigError(f"question bank: the {'/'.join(splits)} splits of {', '.join(sets)} hold no question with "
                          "gold documents")
    vectors = np.asarray(embedder.embed(questions, role="query"), dtype=np.float32)
    log.info("question bank: %d questions from %s", len(questions), counts)
    sources = tuple(key for key, n in counts.items() if n)
    return QuestionBank(cfg.models.embedder, vectors, tuple(gold), sources, tuple(origin)), counts


def write_bank(cfg: DomainConfig, sets: Sequence[str], out: Path | None = None,
               splits: Sequence[str] = ("train",)) -> tuple[Path, dict[str, int]]:
    """Build the bank with the domain's embedder and write it to `out` (default: the file domain.toml names, or
    models/question_bank.npz in the domain folder)."""
    from rag.build_retrieval import build_embedder

    path = out or cfg.path(cfg.retrieval.question_bank or "models/question_bank.npz")
    bank, counts = build_bank(cfg, bank_sets(cfg, sets), build_embedder(cfg).load(), splits)
    return bank.save(path), counts
