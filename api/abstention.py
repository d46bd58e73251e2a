"""Abstain when the best evidence is weak: the generator is not called and the answer says the corpus does not
cover the question, showing the nearest passages instead.

The score is the best hit's score from the stage the domain names (`[abstention] score`: the dense cosine by
default, or the reranker / fused score), compared with the domain's calibrated threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.records import Hit
from domains.config import AbstentionConfig

log = logging.getLogger(__name__)

STAGE_KEYS = {"dense": ("dense",), "rerank": ("rerank",), "fused": ("rrf", "fused")}


@dataclass(frozen=True, slots=True)
class AbstentionDecision:
    abstain: bool
    score: float | None  # None: no hit carries the configured stage's score
    threshold: float
    stage: str
    reason: str

    def trace(self) -> dict[str, Any]:
        return {"abstained": self.abstain, "score": self.score, "threshold": self.threshold, "stage": self.stage}


def stage_score(hit: Hit, stage: str) -> float | None:
    for key in STAGE_KEYS.get(stage, (stage,)):
        if key in hit.stage_scores:
            return float(hit.stage_scores[key])
    return float(hit.score) if hit.retriever in STAGE_KEYS.get(stage, (stage,)) else None


def best_score(hits: Sequence[Hit], stage: str) -> float | None:
    scores = [s for s in (stage_score(h, stage) for h in hits) if s is not None]
    return max(scores) if scores else None


def decide(hits: Sequence[Hit], config: AbstentionConfig) -> AbstentionDecision:
    """Abstain when nothing was found, or when the best `config.score` is under `config.threshold`.
    A retriever that does not produce that stage's score cannot be judged: answer, and log why."""
    if not hits:
        return AbstentionDecision(True, None, config.threshold, config.score, "no passage was retrieved")
    score = best_score(hits, config.score)
    if score is None:
        log.warning("no hit carries a %r score; abstention is off for this query", config.score)
        return AbstentionDecision(False, None, config.threshold, config.score, "")
    if score < config.threshold:
        reason = f"best {config.score} score {score:.3f} is under the domain threshold {config.threshold:.3f}"
        return AbstentionDecision(True, score, config.threshold, config.score, reason)
    return AbstentionDecision(False, score, config.threshold, config.score, "")
