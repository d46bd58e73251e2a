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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from domains.config import DomainConfig
from retrieval.array_file import read_arrays, write_arrays

FORMAT = 1
_FIX = "build it again with `dossier train gate --domain {domain}`"


@dataclass(frozen=True, slots=True)
class DomainGate:
    embedder: str  # the query embedder's registry name
    weights: np.ndarray  # (dim,) float32
    bias: float
    threshold: float  # on the logit; chosen on the dev split
    report: dict[str, Any] = field(default_factory=dict)  # provenance: sets, counts, dev figures

    def margins(self, vectors: np.ndarray) -> np.ndarray:
        """(q,) logit minus threshold for each query vector: >= 0 in the domain."""
        if vectors.shape[1] != self.weights.shape[0]:
            raise ConfigError(f"domain gate weights have {self.weights.shape[0]} dims, the queries {vectors.shape[1]}")
        return vectors.astype(np.float32) @ self.weights + self.bias - self.threshold

    def save(self, path: Path) -> Path:
        meta = {"format": FORMAT, "embedder": self.embedder, "bias": self.bias, "threshold": self.threshold,
                "report": self.report}
        return write_arrays(path, meta, weights=self.weights.astype(np.float32))

    @staticmethod
    def load(path: Path, domain: str) -> DomainGate:
        arrays, meta = read_classifier_file(path, "domain gate", _FIX.format(domain=domain))
        return DomainGate(meta["embedder"], arrays["weights"], float(meta["bias"]), float(meta["threshold"]),
                          meta.get("report", {}))


def read_classifier_file(path: Path, label: str, fix: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata of a linear classifier over query vectors (this gate, the scope router), or a
    ConfigError that names the file, what is wrong and `fix`."""
    if not path.is_file():
        raise ConfigError(f"the {label} {path} is missing: {fix}")
    try:
        arrays, meta = read_arrays(path, ("weights",))
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"the {label} {path} cannot be read ({err}): {fix}") from err
    if meta.get("format") != FORMAT:
        raise ConfigError(f"the {label} {path} has format {meta.get('format')}, this Dossier reads {FORMAT}: {fix}")
    return arrays, meta


def gate_for(cfg: DomainConfig) -> DomainGate | None:
    """The gate `[retrieval] domain_gate` names (relative to the domain folder), or None."""
    return DomainGate.load(cfg.path(cfg.retrieval.domain_gate), cfg.name) if cfg.retrieval.domain_gate else None
