"""The shortest run of a passage's clauses that holds an extractive reference, cited: a grounded short answer.

On extraction sets (FinQA: a stock code, a date, an amount; median 5 characters) the base model pastes whole
passages, and an adapter trained on those pastes pastes (route 1). Trained on the bare references instead (route 2)
it learned the short form without the grounding: it wrote dates and amounts no passage holds, under real citations
(eval/README.md, "Finance"). A span is between the two. It is the passage's own words, so the citation check
passes it and a model taught to write it copies rather than invents. It is cut to the clauses that hold the value, so
the answer is short:

    reference "35370.00万股", passage "…截至公告披露日，陈大魁持有公司股份的数量为35370.00万股，占公司股份总数…"
    -> "陈大魁持有公司股份的数量为35370.00万股[2]。"

A value matches a clause when the normalised reference (`eval.metrics.normalize_answer`: NFKC, lower case, no
blanks or punctuation) occurs in the normalised clauses; a span too short to say what the value is (under
`MIN_SPAN_CHARS` characters) takes the clause before it as well. Passages the reply itself cited are searched first,
so the span comes from where the model was already looking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from eval.metrics import normalize_answer
from rag.prompting import Evidence

_SENTENCES = re.compile(r"[^。！？；!?;\n]+")
_CLAUSE_END = re.compile(r"(?<=[，,：:])")
MIN_REFERENCE_CHARS = 2  # a one-character reference ("是") occurs everywhere
MIN_SPAN_CHARS = 8  # "为35370.00万股" alone does not say whose shares
MAX_SPAN_CHARS = 80  # longer is a paste again, not an answer


def _clauses(sentence: str) -> list[str]:
    return [c for c in _CLAUSE_END.split(sentence.strip()) if c.strip()]


def _shortest_window(clauses: list[str], value: str) -> str | None:
    """The fewest consecutive clauses whose normalised text holds `value`, widened to the left while too short."""
    best: str | None = None
    for start in range(len(clauses)):
        for end in range(start + 1, len(clauses) + 1):
            if value not in normalize_answer("".join(clauses[start:end])):
                continue
            first = start
            while first > 0 and len(normalize_answer("".join(clauses[first:end]))) < MIN_SPAN_CHARS:
                first -= 1
            window = "".join(clauses[first:end]).strip().rstrip("，,：:")
            if best is None or len(window) < len(best):
                best = window
            break
    return best


def passage_span(text: str, reference: str) -> str | None:
    """The shortest clause run of `text` that holds `reference` (None when none does or the reference is too short
    to look for)."""
    value = normalize_answer(reference)
    if len(value) < MIN_REFERENCE_CHARS:
        return None
    spans = (_shortest_window(_clauses(s), value) for s in _SENTENCES.findall(text))
    found = [s for s in spans if s]
    return min(found, key=len) if found else None


def cited_span(reference: str, evidence: Evidence, prefer: Iterable[int] = ()) -> str | None:
    """"<span>[n]。" from the first passage, the preferred (the reply's cited) ones first, holding `reference` in at
    most MAX_SPAN_CHARS characters; None when no given passage does."""
    numbers = list(dict.fromkeys([*prefer, *range(1, len(evidence.hits) + 1)]))
    for n in numbers:
        hit = evidence.passage(n)
        span = None if hit is None else passage_span(hit.chunk.text, reference)
        if span and len(span) <= MAX_SPAN_CHARS:
            return f"{span}[{n}]。"
    return None
