"""BM25 over `bm25s` with the Chinese tokenizer: documents are addressed by position 0..n-1 (the docstore order).

bm25s takes pre-tokenised corpora as lists of string tokens (its own tokenizer is whitespace / English-stemmer
based), so documents are tokenised with `JiebaTokenizer` and handed over as string lists; queries likewise. The
token lists are kept in the docstore, so an incremental update re-indexes without re-tokenising.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.zh_tokenizer import JiebaTokenizer

log = logging.getLogger(__name__)


class Bm25Retriever:
    """`search(queries, k, mask) -> (scores (q, k), positions (q, k))`, -1 where fewer than k documents match."""

    def __init__(self, tokenizer: JiebaTokenizer, k1: float = 1.5, b: float = 0.75) -> None:
        self.tokenizer = tokenizer
        self.k1 = k1
        self.b = b
        self._bm25: Any = None

    def __len__(self) -> int:
        return 0 if self._bm25 is None else int(self._bm25.scores["num_docs"])

    def index(self, corpus_tokens: Sequence[Sequence[str]], show_progress: bool = False) -> None:
        """Index documents already tokenised (position i = corpus_tokens[i])."""
        import bm25s

        bm25 = bm25s.BM25(k1=self.k1, b=self.b)
        # an empty document still needs one token for bm25s: the empty token it creates for unmatched queries
        bm25.index([list(t) or [""] for t in corpus_tokens], show_progress=show_progress)
        self._bm25 = bm25

    def search(
        self, queries: Sequence[str], k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """mask: (n_docs,) bool/float, documents with 0 are never returned. Scores > 0 only."""
        tokens = [self.tokenizer.tokenize(q) for q in queries]
        return self.search_tokens(tokens, k, mask)

    def search_tokens(
        self, query_tokens: Sequence[Sequence[str]], k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        n_docs = len(self)
        q = len(query_tokens)
        scores = np.zeros((q, k), dtype=np.float32)
        positions = np.full((q, k), -1, dtype=np.int64)
        if n_docs == 0 or k <= 0:
            return scores, positions
        weight = None if mask is None else np.asarray(mask, dtype=np.float32)
        for i, toks in enumerate(query_tokens):
            doc_scores = self._bm25.get_scores(list(toks) or [""], weight_mask=weight)  # (n_docs,)
            top = _top_k(doc_scores, k)
            top = top[doc_scores[top] > 0]  # a zero score means no query token occurs there
            scores[i, : len(top)] = doc_scores[top]
            positions[i, : len(top)] = top
        return scores, positions

    def document_frequencies(self) -> dict[str, int]:
        """term -> the number of documents holding it (bm25s keeps one CSC column of scores per term)."""
        if self._bm25 is None:
            return {}
        indptr = np.append(self._bm25.scores["indptr"], len(self._bm25.scores["indices"]))
        counts = np.diff(indptr)
        return {term: int(counts[i]) for term, i in self._bm25.vocab_dict.items() if term}

    def save(self, directory: Path) -> None:
        if self._bm25 is None:
            raise ValueError("save: the BM25 index is empty")
        self._bm25.save(str(directory))

    @classmethod
    def load(cls, directory: Path, tokenizer: JiebaTokenizer) -> Bm25Retriever:
        import bm25s

        out = cls(tokenizer)
        out._bm25 = bm25s.BM25.load(str(directory), mmap=False)
        out.k1, out.b = out._bm25.k1, out._bm25.b
        return out


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first; ties broken by position (stable)."""
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.lexsort((part, -scores[part]))]
