"""The domain gate: does a question belong to this domain at all? A linear classifier over the domain's own query
vectors, read by the abstention stage.

The retrieval threshold alone cannot tell "the corpus does not cover this" from "this is another domain's question":
a finance question put to the legal service finds 公司法 and 证券法 articles at a dense cosine above the legal
threshold, and the model answers it from them (8 of 10 FinQA questions in the legal test run, 2026-12-02). The
gate reads the query vector the dense stage computes anyway, so it costs one dot product. It is fitted by `dossier
train gate` on the TRAIN split of this domain's sets against the other domains' (the dev split chooses its
threshold), and records the embedder it was fitted with; a retriever with another embedder refuses it.

Each hit of a query carries the gate's margin (logit minus threshold) as the stage score `core.stages.GATE_STAGE`;
a negative margin means the question reads as another domain's (`rag.abstention.decide`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from domains.config import DomainConfig
from retrieval.query_classifier import QueryClassifier

_FIX = "build it again with `dossier train gate --domain {domain}`"


@dataclass(frozen=True, slots=True)
class DomainGate(QueryClassifier):
    """Its threshold is chosen on the dev split; a margin >= 0 is in the domain."""

    label: ClassVar[str] = "domain gate"

    @staticmethod
    def load(path: Path, domain: str) -> DomainGate:
        return DomainGate.read(path, _FIX.format(domain=domain))


def gate_for(cfg: DomainConfig) -> DomainGate | None:
    """The gate `[retrieval] domain_gate` names (relative to the domain folder), or None."""
    return DomainGate.load(cfg.path(cfg.retrieval.domain_gate), cfg.name) if cfg.retrieval.domain_gate else None
