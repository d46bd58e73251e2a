"""How much of a question's distinctive wording a passage holds: the share of the question's BM25 terms, each
weighted by its inverse document frequency in the domain's corpus, that occur in the passage.

It is the signal a near miss leaves. When the corpus has passages on the topic but not the one that answers ("某公司
2019 年的营收" where only other companies' reports are indexed), the nearest passages are close in meaning and pass
the dense threshold, yet they lack the question's rare terms: the company's name, the product, the event. The
abstention stage (rag/abstention.py) reads the best hit's coverage beside its dense score.

Terms the corpus never contains are left out of the weighting: a typo or a colloquial word would otherwise count
as missing evidence in every passage.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping


class TermCoverage:
    """`share(query_terms, passage_terms)` in [0, 1]; 1.0 when the question has no term the corpus knows."""

    def __init__(self, idf: Mapping[str, float]) -> None:
        self.idf = idf

    @classmethod
    def from_frequencies(cls, document_frequency: Mapping[str, int], n_docs: int) -> TermCoverage:
        """BM25's (Lucene) idf, log(1 + (N - df + 0.5) / (df + 0.5)); terms no document holds are dropped."""
        return cls({term: math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
                    for term, df in document_frequency.items() if df > 0})

    def share(self, query_terms: Iterable[str], passage_terms: Collection[str]) -> float:
        weights = {term: self.idf[term] for term in set(query_terms) if term in self.idf}
        total = sum(weights.values())
        if total <= 0:
            return 1.0  # nothing to judge by: the question's words are all unknown to the corpus
        return sum(w for term, w in weights.items() if term in passage_terms) / total
