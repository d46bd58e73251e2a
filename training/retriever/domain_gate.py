"""`dossier train gate --domain D`: the domain gate (retrieval/domain_gate.py), a logistic regression over the
domain's own query vectors (its query adapter included, as a served question is embedded): this domain's questions
against the other domains'.

Questions come from every retrieval, QA and multiple-choice set of each domain (dialogues and the charge labels of
the CAIL facts add nothing the retrieval sets lack), the TRAIN split for the fit and the DEV split for the threshold:
the highest logit that keeps `keep` of this domain's dev questions, so a wrong refusal stays rare by construction and
what the gate refuses of the other domains is read off the same dev questions. Test questions never enter. Each set
gives at most `per_set` questions per split (a seeded draw), so one large set does not decide what the domain is.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from domains import available_domains, load_domain
from domains.config import DomainConfig
from eval.evalsets import load_evalset, read_jsonl
from eval.splits import Split
from retrieval.domain_gate import DomainGate

log = logging.getLogger(__name__)

GATE_KINDS = ("retrieval", "qa", "mcq")
L2 = 1.0  # ridge on the weights (not the bias), in units of one balanced example
NEWTON_STEPS = 30


@dataclass(frozen=True, slots=True)
class Questions:
    texts: list[str]
    counts: dict[str, int]  # "<domain>/<set>" -> questions taken


def domain_questions(cfg: DomainConfig, split: Split, per_set: int, seed: int = 0) -> Questions:
    texts: list[str] = []
    counts: dict[str, int] = {}
    for spec in cfg.evalsets:
        if spec.kind not in GATE_KINDS:
            continue
        queries = set_questions(cfg, spec.name, split, per_set, seed)
        counts[f"{cfg.name}/{spec.name}"] = len(queries)
        texts += queries
    return Questions(texts, counts)


def set_questions(cfg: DomainConfig, name: str, split: Split, cap: int, seed: int = 0) -> list[str]:
    """At most `cap` distinct questions of one set's split, a seeded draw (the same every run)."""
    records = load_evalset(cfg, name, splits=frozenset({split}), require_gold=False).records
    queries = sorted({r.query.strip() for r in records if r.query.strip()})
    random.Random(f"{seed}:{cfg.name}:{name}:{split}").shuffle(queries)
    return queries[:cap]


def general_questions(path: Path, split: Split, cap: int, exclude: re.Pattern[str] | None = None) -> Questions:
    """Questions of no domain (a JSONL of `question` or `prompt` fields, e.g. general chat prompts) as negatives: a
    stable hash of each text puts a fifth in dev, the rest in train, so the same file serves both splits apart.
    Texts that `exclude` matches are passed over: a general file can hold questions of the very domain (a chat set
    asks about illness too), and those must not be taught as outside it."""
    texts: list[str] = []
    excluded = 0
    for record in read_jsonl(path):
        text = str(record.get("question") or record.get("prompt") or "").strip()
        if not text or (int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 5 == 0) != (split == "dev"):
            continue
        if exclude is not None and exclude.search(text):
            excluded += 1
            continue
        texts.append(text)
    if not texts:
        raise ConfigError(f"{path}: no question or prompt field to take {split} negatives from"
                          + (f" ({excluded} passed over by the exclude pattern)" if excluded else ""))
    if excluded:
        log.info("%s: %d %s negatives passed over by the exclude pattern", path.name, excluded, split)
    texts = sorted(set(texts))
    random.Random(f"general:{path.name}:{split}").shuffle(texts)
    return Questions(texts[:cap], {f"general/{path.name}": len(texts[:cap])})


def exclude_pattern(text: str) -> re.Pattern[str] | None:
    """`--exclude` as a compiled pattern; an invalid one is a ConfigError naming it."""
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as err:
        raise ConfigError(f"--exclude {text!r} is not a valid regular expression: {err}") from err


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """(weights, bias) of a class-balanced L2 logistic regression, by Newton's method (a few hundred dims)."""
    n, dim = x.shape
    positives = max(int(y.sum()), 1)
    sample_weight = np.where(y > 0, n / (2 * positives), n / (2 * max(n - positives, 1)))
    xb = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    ridge = np.full(dim + 1, l2)
    ridge[-1] = 0.0  # the bias is not shrunk
    w = np.zeros(dim + 1)
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        gradient = xb.T @ (sample_weight * (p - y)) + ridge * w
        hessian = (xb * (sample_weight * p * (1 - p))[:, None]).T @ xb + np.diag(ridge)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w[:-1].astype(np.float32), float(w[-1])


def keeping_threshold(logits: np.ndarray, keep: float) -> float:
    """The highest threshold at which a share `keep` of these (in-domain) logits is at or above it."""
    if not 0 < keep <= 1:
        raise ConfigError(f"--keep must be in (0, 1], got {keep}")
    ordered = np.sort(logits)
    return float(ordered[int(np.floor((1 - keep) * len(ordered)))])


def build_gate(cfg: DomainConfig, embedder: Any, per_set: int = 600, keep: float = 0.99,
               negatives: Path | None = None, exclude: str = "") -> DomainGate:
    """Fit on the train split, choose the threshold on dev; `embedder`: the domain's loaded query embedder.
    `negatives`: questions of no domain (`general_questions`, less those `exclude` matches), beside the other
    domains'."""
    pattern = exclude_pattern(exclude)
    others = [load_domain(name) for name in available_domains() if name != cfg.name]
    if not others:
        raise ConfigError("the domain gate needs another domain's questions to tell this one's from")

    def vectors(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(embedder.embed(list(texts), role="query"), dtype=np.float32)

    data: dict[str, tuple[np.ndarray, np.ndarray, dict[str, int]]] = {}
    for split, cap in (("train", per_set), ("dev", max(per_set // 4, 1))):
        own = domain_questions(cfg, split, cap)
        foreign = [domain_questions(other, split, cap) for other in others]
        if negatives is not None:
            foreign.append(general_questions(negatives, split, cap, pattern))
        if not own.texts or not any(q.texts for q in foreign):
            raise ConfigError(f"domain gate: no {split} questions for {cfg.name} or the other domains")
        texts = own.texts + [t for q in foreign for t in q.texts]
        log.info("domain gate %s: embedding %d %s questions", cfg.name, len(texts), split)
        labels = np.r_[np.ones(len(own.texts)), np.zeros(len(texts) - len(own.texts))]
        data[split] = vectors(texts), labels, own.counts | {k: v for q in foreign for k, v in q.counts.items()}
    x, y, _ = data["train"]
    weights, bias = fit_logistic(x, y)
    dev_x, dev_y, dev_counts = data["dev"]
    logits = dev_x @ weights + bias
    threshold = keeping_threshold(logits[dev_y > 0], keep)
    report = {
        "train": data["train"][2], "dev": dev_counts, "keep": keep,
        "dev_kept_in_domain": round(float((logits[dev_y > 0] >= threshold).mean()), 4),
        "dev_refused_other_domains": round(float((logits[dev_y == 0] < threshold).mean()), 4),
        "dev_refused_by_source": refused_by_source(logits, dev_counts, threshold),
        "train_accuracy": round(float(((x @ weights + bias >= 0) == (y > 0)).mean()), 4),
        **({"negatives_exclude": exclude} if pattern is not None else {}),
    }
    log.info("domain gate %s: threshold %.3f keeps %.3f of the dev questions and refuses %.3f of the others'",
             cfg.name, threshold, report["dev_kept_in_domain"], report["dev_refused_other_domains"])
    return DomainGate(cfg.models.embedder, weights, bias, threshold, report)


def refused_by_source(logits: np.ndarray, counts: dict[str, int], threshold: float) -> dict[str, float]:
    """The share of each source's dev questions under the threshold; `counts` lists the sources in the order their
    questions were embedded (own sets first), so a general file's share can be read apart from the other domains'."""
    shares: dict[str, float] = {}
    start = 0
    for source, n in counts.items():
        if n:
            shares[source] = round(float((logits[start:start + n] < threshold).mean()), 4)
        start += n
    return shares


def write_gate(cfg: DomainConfig, out: Path | None = None, per_set: int = 600, keep: float = 0.99,
               negatives: Path | None = None, exclude: str = "") -> tuple[Path, DomainGate]:
    """Build the gate with the domain's embedder and write it to `out` (default: the file domain.toml names, or
    models/domain_gate.npz in the domain folder)."""
    from rag.build_retrieval import build_embedder

    path = out or cfg.path(cfg.retrieval.domain_gate or "models/domain_gate.npz")
    gate = build_gate(cfg, build_embedder(cfg).load(), per_set, keep, negatives, exclude)
    return gate.save(path), gate
