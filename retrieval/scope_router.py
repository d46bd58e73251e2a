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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from domains.config import DomainConfig
from retrieval.array_file import write_arrays
from retrieval.domain_gate import FORMAT, read_classifier_file

_FIX = "build it again with `dossier train router --domain {domain}`"


@dataclass(frozen=True, slots=True)
class ScopeRouter:
    embedder: str  # the query embedder's registry name
    weights: np.ndarray  # (dim,) float32
    bias: float
    report: dict[str, Any] = field(default_factory=dict)  # provenance: sets, counts, dev shares routed

    def routes(self, vectors: np.ndarray) -> np.ndarray:
        """(q,) bool: the query reads as a case description (logit >= 0)."""
        if vectors.shape[1] != self.weights.shape[0]:
            raise ConfigError(f"scope router weights have {self.weights.shape[0]} dims, "
                              f"the queries {vectors.shape[1]}")
        return vectors.astype(np.float32) @ self.weights + self.bias >= 0

    def save(self, path: Path) -> Path:
        meta = {"format": FORMAT, "embedder": self.embedder, "bias": self.bias, "report": self.report}
        return write_arrays(path, meta, weights=self.weights.astype(np.float32))

    @staticmethod
    def load(path: Path, domain: str) -> ScopeRouter:
        arrays, meta = read_classifier_file(path, "scope router", _FIX.format(domain=domain))
        return ScopeRouter(meta["embedder"], arrays["weights"], float(meta["bias"]), meta.get("report", {}))


def router_for(cfg: DomainConfig) -> ScopeRouter | None:
    """The router `[retrieval] scope_router` names (relative to the domain folder), or None."""
    return ScopeRouter.load(cfg.path(cfg.retrieval.scope_router), cfg.name) if cfg.retrieval.scope_router else None
