"""Near-miss calibration: choose `[abstention] near_miss_weight` and `near_miss_threshold` on the dev split.

A near miss is a question whose answer is not in the corpus while passages on its topic are. The dev questions of
the domain's gold sets make both kinds: each is asked as it is, and counts as answerable where a gold document is in
the top k, and asked again with its gold documents hidden (`eval.answer_cache.HidingRetriever`), which is a near miss:
the same corpus without the passage that answers. Both kinds come from the same sets, so a rule chosen here cannot
separate them by the sort of question (a case description against an everyday one), only by the evidence.

The strength of the evidence is the best hit's score (the domain's `[abstention] score`) plus `weight` times the best
hit's term coverage (retrieval/term_coverage.py). For each weight of a grid the threshold keeps `keep` of the
answerable questions; the weight under which that threshold refuses the most near misses is chosen. Weight 0 (the
score alone, a stricter threshold) is reported beside it for comparison.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import ConfigError
from core.protocols import Retriever
from core.stages import COVERAGE_STAGE, AbstentionScore
from domains import DomainConfig
from eval.answer_cache import HidingRetriever
from eval.evalsets import EvalRecord, load_evalset
from rag.abstention import best_score

log = logging.getLogger(__name__)

WEIGHTS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the abstention stage reads of one question's hits."""

    score: float
    coverage: float

    def strength(self, weight: float) -> float:
        return self.score + weight * self.coverage


@dataclass(frozen=True, slots=True)
class NearMissChoice:
    weight: float
    threshold: float
    kept: float  # share of answerable questions at or over the threshold
    refused: float  # share of near misses under it


def threshold_keeping(strengths: Sequence[float], keep: float) -> float:
    """The highest threshold that leaves at least `keep` of `strengths` at or over it (values under it are refused)."""
    if not strengths:
        raise ValueError("no answerable questions to keep")
    ordered = sorted(strengths)
    return ordered[int((1 - keep) * len(ordered) + 1e-9)]


def choose(answerable: Sequence[Evidence], near_misses: Sequence[Evidence], keep: float,
           weights: Sequence[float] = WEIGHTS) -> tuple[NearMissChoice, NearMissChoice]:
    """(the best weight's choice, the score alone's) at the threshold keeping `keep` of `answerable`."""
    if not near_misses:
        raise ValueError("no near misses to refuse")

    def at(weight: float) -> NearMissChoice:
        threshold = threshold_keeping([e.strength(weight) for e in answerable], keep)
        return NearMissChoice(weight, threshold, kept_share(answerable, weight, threshold),
                              1 - kept_share(near_misses, weight, threshold))

    choices = [at(w) for w in weights]
    best = max(choices, key=lambda c: (c.refused, -c.weight))  # ties: the lighter weight
    return best, at(0.0)


def gold_sets(cfg: DomainConfig, names: Sequence[str] = ()) -> list[str]:
    """The domain's sets that name gold documents (retrieval and QA), or `names`."""
    found = [s.name for s in cfg.evalsets if s.kind in ("retrieval", "qa") and s.gold_field]
    if names:
        unknown = sorted(set(names) - set(found))
        if unknown:
            raise ConfigError(f"{cfg.name}: {unknown} name no gold documents; sets that do: {found}")
        return list(names)
    return found


def collect(retriever: Retriever, records: Sequence[EvalRecord], key: str, k: int) -> tuple[list[Evidence],
                                                                                          list[Evidence]]:
    """(answerable: gold among the top k, near misses: the same questions with their gold hidden)."""
    answerable: list[Evidence] = []
    near_misses: list[Evidence] = []
    for record in records:
        hits = retriever.retrieve([record.query], k)[0].hits
        if set(record.gold_ids) & {h.chunk.doc_id for h in hits}:
            answerable += _evidence(hits, key)
        hidden = HidingRetriever(retriever, record.gold_ids, k).retrieve([record.query], k)[0].hits
        near_misses += _evidence(hidden, key)
    return answerable, near_misses


def _evidence(hits: Sequence[Any], key: str) -> list[Evidence]:
    score, coverage = best_score(hits, key), best_score(hits, COVERAGE_STAGE)
    return [] if score is None or coverage is None else [Evidence(score, coverage)]


def calibrate_near_miss(cfg: DomainConfig, retriever: Retriever, per_set: int, keep: float,
                        evalsets: Sequence[str] = ()) -> dict[str, Any]:
    """Collect both kinds from `per_set` dev questions of each gold set, choose, and report per set."""
    from tqdm import tqdm

    if not 0.5 <= keep < 1:
        raise ConfigError(f"--keep {keep}: the share of answerable questions to keep, between 0.5 and 1")
    key = AbstentionScore(cfg.abstention.score).stage_key(cfg.retrieval.fusion)
    k = cfg.retrieval.final_k
    per: dict[str, tuple[list[Evidence], list[Evidence]]] = {}
    for name in gold_sets(cfg, evalsets):
        records = load_evalset(cfg, name, splits=frozenset({"dev"}), limit=per_set).records
        per[name] = collect(retriever, tqdm(records, desc=name, unit="q"), key, k)
    answerable = [e for a, _ in per.values() for e in a]
    near_misses = [e for _, n in per.values() for e in n]
    if not answerable or not near_misses:
        raise ConfigError(f"{cfg.name}: no dev question found its gold in the top {k}; nothing to calibrate on")
    best, score_alone = choose(answerable, near_misses, keep)
    log.info("%s: %s + %g x coverage >= %.4f keeps %.1f %% of %d answerable, refuses %.1f %% of %d near misses",
             cfg.name, key, best.weight, best.threshold, 100 * best.kept, len(answerable), 100 * best.refused,
             len(near_misses))

    def rates(choice: NearMissChoice) -> dict[str, dict[str, float | int]]:
        # a set with no question of a kind reports 0.0 for it
        return {name: {"answerable": len(a),
                       "kept": round(kept_share(a, choice.weight, choice.threshold), 4) if a else 0.0,
                       "near_misses": len(n),
                       "refused": round(1 - kept_share(n, choice.weight, choice.threshold), 4) if n else 0.0}
                for name, (a, n) in per.items()}

    return {"domain": cfg.name, "stage_key": key, "k": k, "keep": keep, "date": time.strftime("%Y-%m-%d"),
            "near_miss_weight": best.weight, "near_miss_threshold": round(best.threshold, 4),
            "kept": round(best.kept, 4), "refused": round(best.refused, 4), "per_set": rates(best),
            "score_alone": {"threshold": round(score_alone.threshold, 4), "kept": round(score_alone.kept, 4),
                            "refused": round(score_alone.refused, 4)},
            "n_answerable": len(answerable), "n_near_misses": len(near_misses)}


def kept_share(evidence: Sequence[Evidence], weight: float, threshold: float) -> float:
    """The share of `evidence` at or over the bar; `evidence` must not be empty."""
    return sum(e.strength(weight) >= threshold for e in evidence) / len(evidence)


def format_near_miss(result: Mapping[str, Any]) -> str:
    lines = [f"{result['domain']}: {result['stage_key']} + {result['near_miss_weight']:g} x coverage >= "
             f"{result['near_miss_threshold']:.4f} keeps {result['kept']:.1%} of {result['n_answerable']} answerable "
             f"dev questions and refuses {result['refused']:.1%} of {result['n_near_misses']} near misses",
             f"  the score alone at the same keep: threshold {result['score_alone']['threshold']:.4f}, refuses "
             f"{result['score_alone']['refused']:.1%}"]
    lines += [f"  {name:45s} kept {r['kept']:.1%} of {r['answerable']}, refused {r['refused']:.1%} of "
              f"{r['near_misses']} near misses" for name, r in result["per_set"].items()]
    return "\n".join(lines)


_SECTION = re.compile(r"^\[abstention\]\n(?:(?!^\[).*\n?)*", re.MULTILINE)
_NEAR_MISS_LINE = re.compile(r"^near_miss_(?:weight|threshold)\s*=.*\n?", re.MULTILINE)


def write_near_miss(cfg: DomainConfig, weight: float, threshold: float, command: str, date: str = "") -> None:
    """Set `near_miss_weight` and `near_miss_threshold` in the domain.toml's [abstention] section, with a comment
    naming the command; the rest of the file is left as it is."""
    path = cfg.root / "domain.toml"
    text = path.read_text(encoding="utf-8")
    section = _SECTION.search(text)
    if section is None:
        raise ConfigError(f"{path}: no [abstention] section to update")
    body = _NEAR_MISS_LINE.sub("", section.group(0)).rstrip("\n")
    date = date or time.strftime("%Y-%m-%d")
    body += (f"\nnear_miss_weight = {weight:g}  # chosen by `{command}` on {date}\n"
             f"near_miss_threshold = {threshold:.4f}\n\n")
    path.write_text(text[: section.start()] + body + text[section.end():].lstrip("\n"), encoding="utf-8")
