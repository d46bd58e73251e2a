"""Hub correction for the dense stage: a passage near every question is not the answer to each of them.

In a corpus of doctors' answers some answers are generic ("建议到医院检查，明确诊断后对症治疗"): they sit close to
almost any question, so they fill the top five of questions they do not answer. Following CSLS (Conneau et al.
2018, "Word translation without parallel data"), each chunk gets a hub score, the mean cosine of its `neighbours`
nearest questions in the domain's question bank (the TRAIN questions the bank already holds), and the dense
stage ranks by `cosine - hub_weight * hub score`. A bank question never counts for its own gold documents: an
answer that was written for one question must not be marked a hub by that question.

The raw cosine stays the dense stage's score for the abstention threshold; only the order changes. Computed once
when the retriever loads (medical: 7,533 chunks x 2,901 questions, well under a second).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from retrieval.question_bank import QuestionBank

BLOCK = 4096  # chunks scored at a time: bounds the (bank, block) similarity matrix (~47 MB at 2,901 questions)


def hub_scores(keys: np.ndarray, vectors: np.ndarray, bank: QuestionBank, neighbours: int,
               keys_of_doc: Mapping[str, Sequence[int]]) -> np.ndarray:
    """(n,) mean cosine of each chunk (`keys`, `vectors`: L2-normalised rows) to its `neighbours` nearest bank
    questions, each question's own gold chunks left out."""
    if len(keys) == 0:
        return np.zeros(0, np.float32)
    position = {int(k): i for i, k in enumerate(keys.tolist())}
    own_rows, own_cols = [], []  # (bank question, chunk position) pairs to leave out
    for question, doc_ids in enumerate(bank.doc_ids):
        for doc_id in doc_ids:
            for key in keys_of_doc.get(doc_id, ()):
                if (col := position.get(int(key))) is not None:
                    own_rows.append(question)
                    own_cols.append(col)
    rows, cols = np.asarray(own_rows, np.int64), np.asarray(own_cols, np.int64)
    m = max(1, min(neighbours, len(bank.doc_ids) - 1))
    out = np.empty(len(keys), np.float32)
    for start in range(0, len(keys), BLOCK):
        stop = min(start + BLOCK, len(keys))
        similarity = bank.vectors @ vectors[start:stop].astype(np.float32).T  # (bank, block)
        inside = (cols >= start) & (cols < stop)
        similarity[rows[inside], cols[inside] - start] = -np.inf
        nearest = -np.partition(-similarity, kth=m - 1, axis=0)[:m]
        # a chunk whose every bank question is its own (a tiny bank) has no hub evidence: score 0
        out[start:stop] = np.where(np.isfinite(nearest), nearest, 0.0).mean(axis=0)
    return out


class HubCorrection:
    """Per-key hub scores and the weight they are taken off the dense cosines with."""

    def __init__(self, keys: np.ndarray, scores: np.ndarray, weight: float) -> None:
        order = np.argsort(keys)
        self._keys = keys[order]
        self._scores = scores[order]
        self.weight = weight
        # a chunk added after the scores were computed gets a typical score, not 0 (which would lift it above all)
        self._unknown = float(np.median(scores)) if len(scores) else 0.0

    def __len__(self) -> int:
        return len(self._keys)

    def of(self, keys: np.ndarray) -> np.ndarray:
        """Hub scores of `keys` (any shape); a key not seen at load gets the median score."""
        if not len(self._keys):
            return np.zeros(keys.shape, np.float32)
        at = np.clip(np.searchsorted(self._keys, keys), 0, len(self._keys) - 1)
        return np.where(self._keys[at] == keys, self._scores[at], self._unknown).astype(np.float32)

    def rerank(self, scores: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores (q, k), keys (q, k)) of a dense search -> (corrected scores, keys, raw cosines), each row best
        corrected score first; -1 padding stays last."""
        corrected = np.where(keys >= 0, scores - self.weight * self.of(keys), -np.inf).astype(np.float32)
        order = np.argsort(-corrected, axis=1, kind="stable")
        pick = np.take_along_axis
        return pick(corrected, order, 1), pick(keys, order, 1), pick(scores, order, 1)
