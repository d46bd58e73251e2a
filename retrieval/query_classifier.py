"""A linear classifier over a retriever's query vectors, fitted offline and kept as one small file. It reads the
query vector the dense stage computes anyway, so a query pays one dot product. Two questions are asked this way:
does a question belong to the domain (retrieval/domain_gate.py), and is it a case description
(retrieval/scope_router.py). The file records the embedder it was fitted with; a retriever with another embedder
refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from core.errors import ConfigError
from retrieval.array_file import read_arrays, write_arrays

FORMAT = 1


@dataclass(frozen=True, slots=True)
class QueryClassifier:
    embedder: str  # the query embedder's registry name
    weights: np.ndarray  # (dim,) float32
    bias: float
    threshold: float = 0.0  # on the logit
    report: dict[str, Any] = field(default_factory=dict)  # provenance: sets, counts, dev figures
    label: ClassVar[str] = "query classifier"  # what errors call it

    def margins(self, vectors: np.ndarray) -> np.ndarray:
        """(q,) logit minus threshold for each query vector: >= 0 on the positive side."""
        if vectors.shape[1] != self.weights.shape[0]:
            raise ConfigError(f"{self.label} weights have {self.weights.shape[0]} dims, "
                              f"the queries {vectors.shape[1]}")
        return vectors.astype(np.float32) @ self.weights + self.bias - self.threshold

    def save(self, path: Path) -> Path:
        meta = {"format": FORMAT, "embedder": self.embedder, "bias": self.bias, "threshold": self.threshold,
                "report": self.report}
        return write_arrays(path, meta, weights=self.weights.astype(np.float32))

    @classmethod
    def read(cls, path: Path, fix: str) -> Self:
        """The classifier in `path`, or a ConfigError that names the file, what is wrong and `fix`."""
        if not path.is_file():
            raise ConfigError(f"the {cls.label} {path} is missing: {fix}")
        try:
            arrays, meta = read_arrays(path, ("weights",))
        except (OSError, ValueError, KeyError) as err:
            raise ConfigError(f"the {cls.label} {path} cannot be read ({err}): {fix}") from err
        if meta.get("format") != FORMAT:
            raise ConfigError(f"the {cls.label} {path} has format {meta.get('format')}, this Dossier reads {FORMAT}: "
                              f"{fix}")
        return cls(meta["embedder"], arrays["weights"], float(meta["bias"]), float(meta.get("threshold", 0.0)),
                   meta.get("report", {}))
