"""Evidence focus: each passage shown as its few sentences that bear on the question, in their own order.

A 0.5B model answers an extraction question ("…质押物占持股比是什么？") by pasting the passage it trusts, and a
five-passage prompt is most of the first token's wait (prefill-bound on 2 cores, edge/README.md). Showing each passage
as its `keep` best sentences shortens both the paste and the prefill. A sentence is scored by the question's
character bigrams it holds, each weighted by its inverse document frequency over the sentences of all the passages
shown, so the words every passage shares ("公司", "股份") count for little and the question's names and terms decide.

The chunk itself is untouched: citations, the support check and the marker repair read the stored text, of which
every shown sentence is a part. A passage with no sentence sharing a bigram with the question keeps its opening
sentences, so nothing is shown empty. Gaps between kept sentences are marked "…", so the excerpt does not read as
one run of text.

Off in every domain (`[generation] focus_sentences = 0`): at 3 sentences it cut the prompt by a quarter to a third
and the first token with it, but cost legal answers 3 points of char F1 and made the finance base model refuse more
answerable questions (eval/README.md "Route 4", edge/README.md).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from rag.support import char_bigrams

GAP = "…"
# to a full stop, a question or exclamation mark, a semicolon or a line end: the units a filing or an article is
# written in (a comma-clause is too short to carry the subject and the figure together)
_SENTENCE = re.compile(r".*?(?:[。！？；!?;]+[”」』\"]?|\n|$)", re.S)


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence of `text`, in order; together they cover every non-blank character."""
    spans: list[tuple[int, int]] = []
    for match in _SENTENCE.finditer(text):
        start, end = match.span()
        if end > start and text[start:end].strip():
            spans.append((start, end))
    return spans


def focus_passages(texts: Sequence[str], question: str, keep: int) -> list[str]:
    """Each text cut to its `keep` sentences that score highest against `question`, in the text's own order.

    A text of `keep` sentences or fewer is returned whole; `keep <= 0` returns every text whole."""
    if keep <= 0:
        return list(texts)
    cut = [sentences(text) for text in texts]
    grams = [[char_bigrams(text[s:e]) for s, e in spans] for text, spans in zip(texts, cut, strict=True)]
    frequency = Counter(g for passage in grams for sentence in passage for g in sentence)
    total = sum(len(passage) for passage in grams)
    # in sorted order: a sentence's score is a float sum, and summing over a set would follow string hashing, which
    # differs between processes, so near-tied sentences (and the prompt, and the reply cache) could differ run to run
    idf = {g: math.log(1 + total / frequency[g]) for g in sorted(char_bigrams(question)) if frequency[g]}
    return [_excerpt(text, spans, sentence_grams, idf, keep)
            for text, spans, sentence_grams in zip(texts, cut, grams, strict=True)]


def _excerpt(text: str, spans: list[tuple[int, int]], grams: list[set[str]], idf: dict[str, float], keep: int) -> str:
    if len(spans) <= keep:
        return text
    scores = [sum(weight for g, weight in idf.items() if g in sentence) for sentence in grams]
    ranked = sorted(range(len(spans)), key=lambda i: (-scores[i], i))
    chosen = sorted(ranked[:keep]) if scores[ranked[0]] > 0 else list(range(keep))
    parts: list[str] = []
    previous = -1
    for i in chosen:
        if i != previous + 1:
            parts.append(GAP)
        start, end = spans[i]
        parts.append(text[start:end].strip())
        previous = i
    if previous < len(spans) - 1:
        parts.append(GAP)
    return "".join(parts)
