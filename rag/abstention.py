"""Abstain when the best evidence is weak: the generator is not called and the answer says the corpus does not
cover the question, showing the nearest passages instead. A generator that reads the passages and says they do not
answer (its reply opens with the domain's refusal sentence, as the tuned adapters are trained to) abstains the
same way (`model_refused`).

A question the domain gate (retrieval/domain_gate.py, where the domain has one) places in another domain is
abstained on too, whatever its score: the passages found for it are this domain's nearest, not an answer.

A near miss is abstained on where the domain sets `near_miss_weight`: passages on the question's topic that lack its
rare terms (another company's report for a question about one company). The best score plus that weight times the
best hit's term coverage (retrieval/term_coverage.py) must reach `near_miss_threshold`.

The score is the best hit's score from the stage the domain names (`[abstention] score`: the dense cosine by
default, the reranker's, or "fused": the score of whichever fusion the retriever runs, RRF or z-score), compared
with the domain's calibrated threshold. `eval.calibrate` chooses that threshold with the same `best_score`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.records import Hit
from core.stages import COVERAGE_STAGE, GATE_STAGE, AbstentionScore, Fusion
from domains.config import AbstentionConfig, PromptsConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AbstentionDecision:
    abstain: bool
    score: float | None  # None: no hit carries the configured stage's score
    threshold: float
    stage: str  # the `Hit.stage_scores` key that was read
    reason: str
    gate_margin: float | None = None  # the domain gate's (retrieval/domain_gate.py); None without one
    coverage: float | None = None  # the best hit's term coverage, where the near-miss check read it

    def trace(self) -> dict[str, Any]:
        gate = {} if self.gate_margin is None else {"gate_margin": round(self.gate_margin, 3)}
        coverage = {} if self.coverage is None else {"coverage": round(self.coverage, 3)}
        return {"abstained": self.abstain, "score": self.score, "threshold": self.threshold, "stage": self.stage,
                **gate, **coverage}


def stage_score(hit: Hit, key: str) -> float | None:
    """The score stage `key` gave this hit; None when that stage did not score it."""
    if key in hit.stage_scores:
        return float(hit.stage_scores[key])
    return float(hit.score) if hit.retriever == key else None


def best_score(hits: Sequence[Hit], key: str) -> float | None:
    """The largest score of stage `key` among `hits` (a `core.stages` name, e.g. `AbstentionScore.stage_key`)."""
    scores = [s for s in (stage_score(h, key) for h in hits) if s is not None]
    return max(scores) if scores else None


def decide(hits: Sequence[Hit], config: AbstentionConfig, fusion: Fusion) -> AbstentionDecision:
    """Abstain when nothing was found, or when the best `config.score` is under `config.threshold`; `fusion` is the
    retriever's, which "fused" stands for. A retriever that does not produce that score cannot be judged: answer,
    and log why."""
    key = AbstentionScore(config.score).stage_key(fusion)
    if not hits:
        return AbstentionDecision(True, None, config.threshold, key, "no passage was retrieved")
    score = best_score(hits, key)
    if score is None:
        log.warning("no hit carries a %r score; abstention is off for this query", key)
        return AbstentionDecision(False, None, config.threshold, key, "")
    if score < config.threshold:
        reason = f"best {key} score {score:.3f} is under the domain threshold {config.threshold:.3f}"
        return AbstentionDecision(True, score, config.threshold, key, reason)
    margin = best_score(hits, GATE_STAGE)  # the same on every hit of the query; None without a gate
    if margin is not None and margin < 0:
        reason = f"the domain gate places the question outside this domain (margin {margin:.2f})"
        return AbstentionDecision(True, score, config.threshold, key, reason, margin)
    coverage = best_score(hits, COVERAGE_STAGE) if config.near_miss_weight > 0 else None
    if coverage is not None and score + config.near_miss_weight * coverage < config.near_miss_threshold:
        # on the topic, not the answer: close in meaning, without the question's own rare terms
        reason = (f"a near miss: best {key} score {score:.3f} with {coverage:.0%} of the question's weighted terms "
                  f"in the best passage is under the domain's bar ({key} + {config.near_miss_weight:g} x coverage "
                  f"< {config.near_miss_threshold:.3f})")
        return AbstentionDecision(True, score, config.threshold, key, reason, margin, coverage)
    return AbstentionDecision(False, score, config.threshold, key, "", margin, coverage)


MODEL_REFUSAL_REASON = "the generator read the evidence and said it does not answer the question"
_MARKERS = re.compile(r"\[[\d,\s]+\]|【[\d,\s]+】")


def refusal_sentence(prompts: PromptsConfig) -> str:
    """The first sentence of the domain's `abstain` text: what a model says when the passages do not answer (the
    rest introduces the nearest passages, which the pipeline shows)."""
    first = re.match(r"[^。！？]*[。！？]", prompts.abstain)
    return first.group(0) if first else prompts.abstain


EMPTY_REPLY_REASON = "the generator's reply held no statement, only citation markers"
ECHO_ONLY_REASON = "the generator's reply only restated the question"
_NOT_A_STATEMENT = re.compile(r"[\s\W_]+")  # spacing and punctuation, once the markers are gone


def empty_reply(generated: str) -> bool:
    """True when the reply says nothing: markers alone ("[1] [2] [3] [4] [5]", a 0.5B model's degenerate answer to
    about one finance question in five), punctuation and spacing. Served as such it is neither an answer nor a
    refusal, and a RAGAS judge scores it 0 or 1 at random; the pipeline abstains with the evidence instead."""
    return not _NOT_A_STATEMENT.sub("", _MARKERS.sub("", generated))


_OPEN_MARKER = re.compile(r"[\[【][\d,\s]*$")  # "[2" of a stream whose "]" has not come yet


def empty_so_far(prefix: str) -> bool:
    """True while a reply still being generated holds markers alone, a marker not yet closed included: a stream
    holds such text back until it says something."""
    return empty_reply(_OPEN_MARKER.sub("", prefix))


def model_refused(generated: str, prompts: PromptsConfig) -> bool:
    """True when the reply opens with the domain's refusal sentence (markers and spacing ignored)."""
    sentence = refusal_sentence(prompts).rstrip("。！？")
    return bool(sentence) and _MARKERS.sub("", generated).strip().startswith(sentence)
