"""The scope router: is a question a case description, or an everyday question? The scope stage's weight follows.

A case description ("经审理查明，2015年3月，被告人…") is answered by one law's article, and the scope stage finds it
best at a high weight (CAIL dev recall@5 0.772 at scope weight 0.5, 0.806 at 1). An everyday question's nearest bank
questions can agree on a law and still be wrong about the article, and there a high weight crowds the right article
out (LawBench consultation dev 0.403 at 0.5, 0.388 at 1). The two kinds read apart easily: a linear classifier over
the query vector the dense stage computes anyway, fitted by `dossier train router` on the TRAIN split (case
descriptions against everyday questions), routes a query to `[retrieval] scope_weight_routed` when its logit is at
least 0, and leaves every other query at `scope_weight`. It records the embedder it was fitted with; a retriever
with another embedder refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from domains.config import DomainConfig
from retrieval.query_classifier import QueryClassifier

_FIX = "build it again with `dossier train router --domain {domain}`"


@dataclass(frozen=True, slots=True)
class ScopeRouter(QueryClassifier):
    """Its threshold stays 0: the logit's sign routes."""

    label: ClassVar[str] = "scope router"

    def routes(self, vectors: np.ndarray) -> np.ndarray:
        """(q,) bool: the query reads as a case description (logit >= 0)."""
        return self.margins(vectors) >= 0

    @staticmethod
    def load(path: Path, domain: str) -> ScopeRouter:
        return ScopeRouter.read(path, _FIX.format(domain=domain))


def router_for(cfg: DomainConfig) -> ScopeRouter | None:
    """The router `[retrieval] scope_router` names (relative to the domain folder), or None."""
    return ScopeRouter.load(cfg.path(cfg.retrieval.scope_router), cfg.name) if cfg.retrieval.scope_router else None
