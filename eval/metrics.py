"""Pure metric functions: ranking metrics over document ids and answer metrics over Chinese text.

Ranking conventions (shared by every ranking function here):
- `ranked` is a list of document ids, best first. Ties are broken by the order given: the caller's ranking is
  the ranking (no score-aware tie averaging), so the same input always gives the same figure.
- A document id that appears more than once counts once, at its first (best) rank; later copies are dropped
  before ranks are counted (several chunks of one document are one document).
- `gold` is the set of relevant document ids, binary relevance. An empty gold set has no defined recall, so the
  functions raise ValueError: the caller must exclude such queries (and count them as skipped).
- `k` must be >= 1; a ranking shorter than k is scored as it is (missing ranks are misses).

Text conventions: Chinese is compared by characters, not whitespace tokens. `normalize_answer` applies NFKC
(full width -> half width), lowercases, and drops whitespace and punctuation before any comparison.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence


def dedupe(ranked: Iterable[str]) -> list[str]:
    """Keep the first occurrence of each id, in order."""
    seen: set[str] = set()
    out: list[str] = []
    for doc_id in ranked:
        if doc_id not in seen:
            seen.add(doc_id)
            out.append(doc_id)
    return out


def _check(gold: Collection[str], k: int | None) -> None:
    if not gold:
        raise ValueError("empty gold set: exclude queries without gold ids before scoring")
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def recall_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """|gold ∩ top-k| / |gold| (after de-duplication of `ranked`)."""
    _check(gold, k)
    gold_set = set(gold)
    return len(gold_set.intersection(dedupe(ranked)[:k])) / len(gold_set)


def hit_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """1.0 if any gold id is in the top k, else 0.0."""
    _check(gold, k)
    gold_set = set(gold)
    return 1.0 if any(doc_id in gold_set for doc_id in dedupe(ranked)[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], gold: Collection[str], k: int | None = None) -> float:
    """1 / rank of the first gold id (ranks start at 1), 0.0 if none is in the (top-k of the) ranking.
    The mean of this over queries is MRR."""
    _check(gold, k)
    gold_set = set(gold)
    for rank, doc_id in enumerate(dedupe(ranked)[:k], start=1):
        if doc_id in gold_set:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """Binary-relevance nDCG@k: sum(1 / log2(rank + 1)) over gold ids in the top k, divided by the same sum for
    an ideal ranking that puts min(|gold|, k) gold ids first."""
    _check(gold, k)
    gold_set = set(gold)
    dcg = sum(1.0 / math.log2(rank + 1) for rank, d in enumerate(dedupe(ranked)[:k], start=1) if d in gold_set)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(gold_set), k) + 1))
    return dcg / ideal


def ranking_metrics(ranked: Sequence[str], gold: Collection[str], ks: Sequence[int]) -> dict[str, float]:
    """All ranking metrics of one query: recall@k, hit@k, ndcg@k for each k, and mrr (uncut)."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(ranked, gold, k)
        out[f"hit@{k}"] = hit_at_k(ranked, gold, k)
        out[f"ndcg@{k}"] = ndcg_at_k(ranked, gold, k)
    out["mrr"] = reciprocal_rank(ranked, gold)
    return out


def mean_metrics(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per-key mean over per-query metric dicts (keys of the first row). Raises ValueError on no rows."""
    if not rows:
        raise ValueError("no rows to average")
    return {key: sum(row[key] for row in rows) / len(rows) for key in rows[0]}


def normalize_answer(text: str) -> str:
    """NFKC, lowercase, and drop whitespace and punctuation (Unicode categories Z*, P*, S*, C*)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "ZPSC")


def exact_match(prediction: str, reference: str) -> float:
    """1.0 if the normalised strings are equal."""
    return 1.0 if normalize_answer(prediction) == normalize_answer(reference) else 0.0


def char_f1(prediction: str, reference: str) -> float:
    """Bag-of-characters F1 of the normalised strings (SQuAD-style F1 with characters as tokens).
    Both empty -> 1.0; exactly one empty -> 0.0."""
    pred, ref = normalize_answer(prediction), normalize_answer(reference)
    if not pred or not ref:
        return 1.0 if pred == ref else 0.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def reference_contained(prediction: str, reference: str) -> float:
    """1.0 when the normalised reference occurs in the normalised prediction: for extraction-style references (a
    number, a name) that a long, well-founded answer states among other sentences. An empty reference -> 0.0."""
    ref = normalize_answer(reference)
    return float(bool(ref) and ref in normalize_answer(prediction))


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence; O(len(a) * len(b)) time, O(len(b)) memory."""
    previous = [0] * (len(b) + 1)
    for ch_a in a:
        current = [0]
        for j, ch_b in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if ch_a == ch_b else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 (beta = 1) over characters of the normalised strings. Both empty -> 1.0; one empty -> 0.0."""
    pred, ref = normalize_answer(prediction), normalize_answer(reference)
    if not pred or not ref:
        return 1.0 if pred == ref else 0.0
    lcs = lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)
