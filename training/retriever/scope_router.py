"""`dossier train router --domain D --cases SETS --others SETS`: the scope router (retrieval/scope_router.py), a
class-balanced logistic regression over the domain's own query vectors (its query adapter included, as a served
question is embedded): the TRAIN questions of the case sets (legal: CAIL case descriptions) against those of the
other sets (everyday consultation questions). A logit of 0 routes; nothing is chosen on dev, which only reports the
share of each set's dev questions routed. Test questions never enter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from domains.config import DomainConfig
from retrieval.scope_router import ScopeRouter
from training.retriever.domain_gate import fit_logistic, set_questions

log = logging.getLogger(__name__)


def build_router(cfg: DomainConfig, embedder: Any, cases: Sequence[str], others: Sequence[str],
                 per_set: int = 2000) -> ScopeRouter:
    """Fit on the train split; `embedder`: the domain's loaded query embedder."""
    check_sets(cases, others)

    def vectors(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(embedder.embed(list(texts), role="query"), dtype=np.float32)

    train = {name: set_questions(cfg, name, "train", per_set) for name in (*cases, *others)}
    positives = [t for name in cases for t in train[name]]
    negatives = [t for name in others for t in train[name]]
    if not positives or not negatives:
        raise ConfigError(f"scope router: no train questions in {list(cases) if not positives else list(others)}")
    log.info("scope router %s: embedding %d case and %d other train questions", cfg.name, len(positives),
             len(negatives))
    x = vectors(positives + negatives)
    y = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    weights, bias = fit_logistic(x, y)
    router = ScopeRouter(cfg.models.embedder, weights.astype(np.float32), bias)
    routed: dict[str, float] = {}
    for name in (*cases, *others):
        dev = set_questions(cfg, name, "dev", per_set)
        if dev:
            routed[name] = round(float(router.routes(vectors(dev)).mean()), 4)
    report = {"cases": list(cases), "others": list(others), "train": {n: len(q) for n, q in train.items()},
              "train_accuracy": round(float(((x @ weights + bias >= 0) == (y > 0)).mean()), 4),
              "dev_routed": routed}
    log.info("scope router %s: dev share routed %s", cfg.name, routed)
    return ScopeRouter(router.embedder, router.weights, router.bias, report=report)


def check_sets(cases: Sequence[str], others: Sequence[str]) -> None:
    """Both kinds named, none twice: a ConfigError before any embedder loads."""
    if not cases or not others:
        raise ConfigError("the scope router needs case sets (--cases) and other sets (--others)")
    if overlap := set(cases) & set(others):
        raise ConfigError(f"a set cannot be both a case set and another: {sorted(overlap)}")


def write_router(cfg: DomainConfig, cases: Sequence[str], others: Sequence[str], out: Path | None = None,
                 per_set: int = 2000) -> tuple[Path, ScopeRouter]:
    """Build the router with the domain's embedder and write it to `out` (default: the file domain.toml names, or
    models/scope_router.npz in the domain folder)."""
    from rag.build_retrieval import build_embedder

    check_sets(cases, others)
    path = out or cfg.path(cfg.retrieval.scope_router or "models/scope_router.npz")
    router = build_router(cfg, build_embedder(cfg).load(), cases, others, per_set)
    return router.save(path), router
