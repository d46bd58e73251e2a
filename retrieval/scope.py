"""The scope stage: which law a question is about, read from the questions asked before it, then searched whole.

On the full legal index a case description competes with 26,390 articles of 378 laws; inside the Criminal Law's
505 it finds its article far more often (CAIL fact -> article, test split: dense 0.795 in the pool, 0.723 in the
full index). The question bank (retrieval/question_bank.py) already knows which documents answered the nearest
earlier questions; their documents' scope (a metadata field: `law_id` for legal) says which law. When one scope
holds at least `scope_min_share` of the neighbours' votes, the dense stage's query is searched again inside that
scope only, and that ranking is one more list for the fusion (`[retrieval] scope_weight`). A question whose
neighbours disagree, or that has none near enough, gets no scope list: the full-index ranking stands alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np


class ScopeMap:
    """doc_id -> scope, and scope -> the FAISS keys of its chunks, from the docstore's metadata."""

    def __init__(self, metadata: Iterable[tuple[int, Mapping]], keys_by_doc: Mapping[str, Sequence[int]],
                 field: str) -> None:
        scope_of_key = {int(key): str(meta[field]) for key, meta in metadata if meta.get(field)}
        self.scope_of_doc: dict[str, str] = {}
        keys: dict[str, list[int]] = {}
        for doc_id, doc_keys in keys_by_doc.items():
            scope = next((scope_of_key[k] for k in doc_keys if k in scope_of_key), None)
            if scope is None:
                continue
            self.scope_of_doc[doc_id] = scope
            keys.setdefault(scope, []).extend(int(k) for k in doc_keys)
        self.keys = {scope: np.array(sorted(found), dtype=np.int64) for scope, found in keys.items()}

    def __len__(self) -> int:
        return len(self.keys)

    def leading(self, votes: Mapping[str, float], min_share: float) -> str | None:
        """The scope holding at least `min_share` of a query's document votes, or None."""
        by_scope: dict[str, float] = {}
        for doc_id, vote in votes.items():
            scope = self.scope_of_doc.get(doc_id)
            if scope is not None:
                by_scope[scope] = by_scope.get(scope, 0.0) + vote
        total = sum(votes.values())
        if not by_scope or total <= 0:
            return None
        scope, vote = max(by_scope.items(), key=lambda item: (item[1], item[0]))
        return scope if vote / total >= min_share else None
