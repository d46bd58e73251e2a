"""Pure metrics over answers: the option a multiple-choice reply picks, whether a reply refuses, abstention
precision / recall, and evidence recall over cited documents. Character F1 and ROUGE-L are in eval.metrics.

Option parsing, the stated rule (citation markers [n] / 【n】 removed first; then the first that applies):
1. an explicit answer phrase: "答案是B", "答案：AC", "正确答案为 A、D", "选B", "应选择C" -> those letters;
2. the reply opens with option letters: "B", "B.", "B、", "AB", "A、C。" -> those letters, unless the reply recites
   two or more options ("A:... B:...": a copy of the question, not a choice);
3. otherwise the reply is unparseable (counted, and scored wrong).
Letters outside the question's options are ignored; a multi-answer is compared as a set (exact match).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence

_LETTERS = "A-H"
_EXPLICIT = re.compile(rf"(?:正确答案|答案|应选择|应选|选择|选项|选)\s*(?:是|为|应为|应该是)?\s*[:：]?\s*"
                       rf"([{_LETTERS}](?:\s*[、，,和及与/]?\s*[{_LETTERS}])*)(?![a-zA-Z])")
_RECITED = re.compile(rf"(?<![A-Z])([{_LETTERS}])\s*[:：.、．]\s*(?=\S)")  # an option's letter and its text
_MARKERS = re.compile(r"\[[\d,，、\s]+\]|【[\d,，、\s]+】")
_LEADING = re.compile(rf"^\s*[(（\[]?([{_LETTERS}](?:\s*[、，,/]?\s*[{_LETTERS}])*)(?![a-zA-Z])")

# phrases with which a reply says the evidence does not answer the question (the domains' prompts ask for that)
REFUSAL = re.compile(r"不足以回答|无法回答|不能回答|无法确定|无法判断|没有(?:找到|提供|涉及)|未(?:找到|提供|涉及)|"
                     r"不涉及|与.{0,12}无关|不在.{0,8}范围")


def parse_choice(reply: str, options: Collection[str]) -> frozenset[str] | None:
    """The option letters a reply picks (see the module's rule); None when it names none of `options`."""
    text = _MARKERS.sub("", unicodedata.normalize("NFKC", reply)).upper()
    recites = len({m.group(1) for m in _RECITED.finditer(text)} & set(options)) >= 2
    for pattern in (_EXPLICIT, _LEADING):
        if pattern is _LEADING and recites:
            break
        match = pattern.search(text)
        if match:
            picked = frozenset(c for c in match.group(1) if c in options)
            if picked:
                return picked
    return None


def choice_correct(picked: frozenset[str] | None, gold: str) -> float:
    """1.0 when the picked set equals the gold letters exactly; an unparseable reply scores 0."""
    return float(picked is not None and picked == frozenset(gold.strip().upper()))


def is_refusal(reply: str) -> bool:
    """True when the reply says the evidence does not answer the question (a model-level abstention)."""
    return bool(REFUSAL.search(reply))


def evidence_recall(cited_doc_ids: Collection[str], gold: Collection[str]) -> float | None:
    """1.0 when a gold document is among the cited ones, 0.0 when not; None without gold ids."""
    if not gold:
        return None
    return float(bool(set(cited_doc_ids) & set(gold)))


def abstention_scores(unanswerable: Sequence[bool], abstained: Sequence[bool]) -> dict[str, float | None]:
    """Abstention as a classifier of unanswerable questions: precision, recall, F1, and the false refusal rate
    (answerable questions refused). A rate over an empty group is None."""
    pairs = list(zip(unanswerable, abstained, strict=True))
    true_pos = sum(u and a for u, a in pairs)
    n_abstained = sum(a for _, a in pairs)
    n_unanswerable = sum(u for u, _ in pairs)
    n_answerable = len(pairs) - n_unanswerable
    precision = true_pos / n_abstained if n_abstained else None
    recall = true_pos / n_unanswerable if n_unanswerable else None
    f1 = (2 * precision * recall / (precision + recall) if precision and recall else 0.0) \
        if precision is not None and recall is not None else None
    false_refusal = sum(a and not u for u, a in pairs) / n_answerable if n_answerable else None
    return {"abstention_precision": precision, "abstention_recall": recall, "abstention_f1": f1,
            "false_refusal_rate": false_refusal}


def abstention_recall_by_source(sources: Sequence[str], abstained: Sequence[bool]) -> dict[str, float]:
    """Abstention recall per kind of unanswerable question ("other:legal/..." -> other, "offtopic", "hidden-gold:..."
    -> hidden_gold), so a run shows which kind it answers anyway: another domain's question and an off-topic one are
    turned away by the threshold and the gate, a near miss (gold hidden) only by the generator."""
    by_kind: dict[str, list[bool]] = {}
    for source, refused in zip(sources, abstained, strict=True):
        by_kind.setdefault(source.split(":", 1)[0].replace("-", "_"), []).append(refused)
    return {f"abstention_recall_{kind}": sum(refusals) / len(refusals) for kind, refusals in sorted(by_kind.items())}


def mean(values: Sequence[float | None]) -> float | None:
    """Mean over the values that are defined; None when none is."""
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None
