"""Abstention threshold calibration: separate in-domain questions from out-of-domain ones by the best-hit score.

The score is one the pipeline has at answer time (`[abstention] score` in domain.toml): for each query we run the
domain's configured retriever (k = retrieval.final_k) and take `best_score(hits, score)`, the largest
`stage_scores[score]` among the hits, exactly as rag.abstention computes it at answer time.

- in-domain: the dev split (eval/splits.py) of the domain's own retrieval and QA eval sets;
- out-of-domain: the dev split of the other domains' retrieval eval sets, plus the hand-written off-topic
  questions in eval/data/offtopic_queries.jsonl (cooking, travel, sport, programming …).

The threshold maximises balanced accuracy, (answer rate in-domain + abstain rate out-of-domain) / 2; the
threshold that keeps false abstentions at 5 % is reported beside it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.protocols import Retriever
from core.stages import FIRST_STAGES, GATE_STAGE, AbstentionScore
from domains import DomainConfig, available_domains, load_domain
from eval.evalsets import load_evalset, read_jsonl
from rag.abstention import best_score

log = logging.getLogger(__name__)

OFFTOPIC = Path(__file__).resolve().parent / "data" / "offtopic_queries.jsonl"
IN_KINDS = ("retrieval", "qa")


@dataclass(frozen=True, slots=True)
class ThresholdChoice:
    threshold: float
    balanced_accuracy: float
    false_abstention: float  # in-domain queries under the threshold
    false_answer: float  # out-of-domain queries at or over it


def rates(in_scores: Sequence[float], out_scores: Sequence[float], threshold: float) -> ThresholdChoice:
    false_abstention = sum(s < threshold for s in in_scores) / len(in_scores)
    false_answer = sum(s >= threshold for s in out_scores) / len(out_scores)
    balanced = ((1 - false_abstention) + (1 - false_answer)) / 2
    return ThresholdChoice(threshold, balanced, false_abstention, false_answer)


def candidate_thresholds(scores: Sequence[float]) -> list[float]:
    """Midpoints between neighbouring distinct scores, plus one under the smallest."""
    values = sorted(set(scores))
    if not values:
        raise ValueError("no scores to calibrate on")
    return [values[0] - 1e-6] + [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]


def choose_threshold(in_scores: Sequence[float], out_scores: Sequence[float]) -> ThresholdChoice:
    """The threshold with the best balanced accuracy (ties: the lower threshold, i.e. fewer abstentions)."""
    if not in_scores or not out_scores:
        raise ValueError("need in-domain and out-of-domain scores")
    best: ThresholdChoice | None = None
    for threshold in candidate_thresholds([*in_scores, *out_scores]):
        choice = rates(in_scores, out_scores, threshold)
        if best is None or choice.balanced_accuracy > best.balanced_accuracy + 1e-12:
            best = choice
    assert best is not None
    return best


def threshold_at_false_abstention(in_scores: Sequence[float], out_scores: Sequence[float], rate: float) -> float:
    """The largest threshold that abstains on at most `rate` of the in-domain queries."""
    ordered = sorted(in_scores)
    allowed = int(rate * len(ordered))  # this many may fall under the threshold
    return rates(in_scores, out_scores, ordered[allowed]).threshold


def in_domain_queries(cfg: DomainConfig, per_set: int, names: Sequence[str] = ()) -> dict[str, list[str]]:
    """Dev queries of the domain's retrieval / QA sets (or of exactly `names`)."""
    sets = [cfg.evalset(n) for n in names] if names else [s for s in cfg.evalsets if s.kind in IN_KINDS]
    return {s.name: _queries(cfg, s.name, per_set) for s in sets}


def out_of_domain_queries(cfg: DomainConfig, per_set: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for other in (load_domain(d) for d in available_domains() if d != cfg.name):
        for spec in (s for s in other.evalsets if s.kind == "retrieval"):
            out[f"{other.name}/{spec.name}"] = _queries(other, spec.name, per_set)
    out["offtopic"] = [str(r["question"]) for r in read_jsonl(OFFTOPIC)]
    return out


def _queries(cfg: DomainConfig, name: str, limit: int) -> list[str]:
    records = load_evalset(cfg, name, splits=frozenset({"dev"}), require_gold=False, limit=limit).records
    return [r.query for r in records if r.query.strip()]


def scored_queries(retriever: Retriever, queries: Mapping[str, list[str]], k: int,
                   key: str) -> dict[str, list[tuple[float, bool]]]:
    """(best-hit score of stage `key`, whether the domain gate refuses the query) per query source, 16 queries a
    batch; a domain without a gate refuses nothing. Queries whose hits carry no such score are left out (and
    logged)."""
    from tqdm import tqdm

    out: dict[str, list[tuple[float, bool]]] = {}
    for source, texts in queries.items():
        found: list[tuple[float | None, bool]] = []
        for start in tqdm(range(0, len(texts), 16), desc=source, unit="batch"):
            for result in retriever.retrieve(texts[start : start + 16], k):
                margin = best_score(result.hits, GATE_STAGE)
                found.append((best_score(result.hits, key), margin is not None and margin < 0))
        out[source] = [(score, gated) for score, gated in found if score is not None]
        if len(out[source]) < len(found):
            log.warning("%s: %d queries without a %r score", source, len(found) - len(out[source]), key)
    return out


def gate_view(in_scored: Mapping[str, list[tuple[float, bool]]],
              out_scored: Mapping[str, list[tuple[float, bool]]]) -> dict[str, Any]:
    """What the domain gate refuses of each source, and the threshold balanced accuracy would choose on what it lets
    through. Reported, not written: once the gate has turned the other domains away, the few questions left out of
    the domain (off-topic ones that share the domain's words) push that choice up, and a higher bar refuses more of
    the domain's own questions (eval/README.md, "The legal and medical gates")."""
    refused = {source: round(sum(g for _, g in pairs) / len(pairs), 4)
               for source, pairs in {**in_scored, **out_scored}.items() if pairs}
    ins = [score for pairs in in_scored.values() for score, gated in pairs if not gated]
    outs = [score for pairs in out_scored.values() for score, gated in pairs if not gated]
    after = _rounded(choose_threshold(ins, outs)) if ins and outs else None
    return {"refused": refused, "after_gate": after, "n_in_after_gate": len(ins), "n_out_after_gate": len(outs)}


def _rounded(choice: ThresholdChoice) -> dict[str, float]:
    return {"threshold": round(choice.threshold, 4), "balanced_accuracy": round(choice.balanced_accuracy, 4),
            "false_abstention": round(choice.false_abstention, 4), "false_answer": round(choice.false_answer, 4)}


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    at = [ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] for p in (5, 25, 50, 75, 95)]
    return {f"p{p}": round(v, 4) for p, v in zip((5, 25, 50, 75, 95), at, strict=True)}


def calibrate_domain(cfg: DomainConfig, factory: Callable[[tuple[str, ...]], Retriever], per_set: int,
                     evalsets: Sequence[str] = ()) -> dict[str, Any]:
    """Score in- and out-of-domain queries with the configured pipeline and choose the threshold. `evalsets`
    narrows the in-domain sets (e.g. to those an eval index covers)."""
    score = AbstentionScore(cfg.abstention.score)
    stages = tuple(cfg.retrieval.stages)
    check_score_available(score, stages)
    key = score.stage_key(cfg.retrieval.fusion)
    retriever = factory(stages)
    k = cfg.retrieval.final_k
    in_scored = scored_queries(retriever, in_domain_queries(cfg, per_set, evalsets), k, key)
    out_scored = scored_queries(retriever, out_of_domain_queries(cfg, per_set), k, key)
    in_scores = {source: [score for score, _ in pairs] for source, pairs in in_scored.items()}
    out_scores = {source: [score for score, _ in pairs] for source, pairs in out_scored.items()}
    ins = [s for values in in_scores.values() for s in values]
    outs = [s for values in out_scores.values() for s in values]
    best = choose_threshold(ins, outs)
    at5 = rates(ins, outs, threshold_at_false_abstention(ins, outs, 0.05))
    gated = any(g for pairs in (*in_scored.values(), *out_scored.values()) for _, g in pairs)
    return {
        "domain": cfg.name, "score": str(score), "stage_key": key, "stages": [str(s) for s in stages], "k": k,
        **_rounded(best),
        "at_5pct_false_abstention": _rounded(at5),
        "n_in": len(ins), "n_out": len(outs),
        "quantiles": {source: _quantiles(v) for source, v in {**in_scores, **out_scores}.items() if v},
        **({"gate": gate_view(in_scored, out_scored)} if gated else {}),
        "date": time.strftime("%Y-%m-%d"),
    }


def check_score_available(score: AbstentionScore, stages: Sequence[str]) -> None:
    """The retriever must produce the score abstention reads: its stage, or (for "fused") both first stages."""
    if score is AbstentionScore.FUSED:
        if not set(FIRST_STAGES) <= set(stages):
            raise ConfigError(f"abstention.score 'fused' needs both dense and bm25 in retrieval.stages {list(stages)}")
    elif score not in stages:
        raise ConfigError(f"abstention.score {str(score)!r} is not a stage of retrieval.stages {list(stages)}")


_THRESHOLD_LINE = re.compile(r"^(\[abstention\][^\[]*?^)threshold\s*=\s*[^\n]*$", re.MULTILINE | re.DOTALL)


def write_threshold(cfg: DomainConfig, threshold: float, date: str = "", command: str = "") -> Path:
    """Rewrite only the `threshold = …` line of the [abstention] section, with a comment naming the command."""
    path = cfg.root / "domain.toml"
    text = path.read_text(encoding="utf-8")
    date = date or time.strftime("%Y-%m-%d")
    command = command or f"dossier eval calibrate --domain {cfg.name}"
    line = f"threshold = {threshold:.4f}  # calibrated by `{command}` on {date}"
    new, count = _THRESHOLD_LINE.subn(lambda m: m.group(1) + line, text, count=1)
    if count != 1:
        raise ConfigError(f"{path}: no `threshold = …` line in an [abstention] section to update")
    path.write_text(new, encoding="utf-8")
    return path


def format_calibration(result: Mapping[str, Any]) -> str:
    lines = [
        f"{result['domain']}: score={result['score']} (max over top-{result['k']} hits), "
        f"n_in={result['n_in']} n_out={result['n_out']}",
        f"threshold {result['threshold']:.4f}: balanced accuracy {result['balanced_accuracy']:.3f}, "
        f"false abstention {result['false_abstention']:.3f}, false answer {result['false_answer']:.3f}",
        f"at 5% false abstention: threshold {result['at_5pct_false_abstention']['threshold']:.4f}, "
        f"false answer {result['at_5pct_false_abstention']['false_answer']:.3f}",
    ]
    lines += [f"  {source:45s} {q}" for source, q in result["quantiles"].items()]
    if gate := result.get("gate"):
        lines.append("the domain gate refuses, whatever the score:")
        lines += [f"  {source:45s} {share:.3f}" for source, share in gate["refused"].items()]
        after = gate["after_gate"]
        lines.append(f"on what it lets through ({gate['n_in_after_gate']} in, {gate['n_out_after_gate']} out): " + (
            f"threshold {after['threshold']:.4f}, false abstention {after['false_abstention']:.3f}, false answer "
            f"{after['false_answer']:.3f} (reported, not written)" if after else "nothing out of the domain is left"))
    return "\n".join(lines)
