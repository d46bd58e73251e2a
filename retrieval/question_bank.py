"""The question bank: questions asked before, with the documents that answered them, as a retrieval stage.

People ask a legal service the same things in different words ("一方不同意离婚怎么办", "如果有一方不同意离婚怎么办"),
and an everyday question shares few words with the statute that answers it, so dense and BM25 both miss it where
the questions before it already found the articles. The bank holds the TRAIN split's questions of the domain's
retrieval sets, embedded by the domain's own query embedder, and the gold documents of each. A new question's
`neighbours` nearest bank questions (cosine, at least `bank_min_cosine`) vote for their documents, each vote its
cosine; the votes are one more ranked list for the retriever's fusion (`[retrieval] bank_weight`).

The file (`dossier train bank`, shipped in `domains/<d>/models/`) records the embedder it was embedded with; a
retriever with another embedder refuses it rather than compare vectors of two spaces. It also records the split each
question came from: once the bank's settings are chosen on dev, the shipped bank may hold the dev questions too, and
an evaluation of a split leaves that split's questions out (`[retrieval] bank_leave_out`), so dev still sees only the
train bank it was chosen with. Test questions never enter a bank.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import ConfigError
from domains.config import DomainConfig
from retrieval.array_file import read_arrays, write_arrays

log = logging.getLogger(__name__)

FORMAT = 2  # 2 records each question's split; a format-1 file is read as train questions only
READABLE = (1, FORMAT)


@dataclass(frozen=True, slots=True)
class QuestionBank:
    embedder: str  # the query embedder's name (registry name of the domain's [models] embedder)
    vectors: np.ndarray  # (n, dim) float32, L2-normalised, one row per question
    doc_ids: tuple[tuple[str, ...], ...]  # the gold documents of each question
    sources: tuple[str, ...] = ()  # which sets and split the questions came from (provenance)
    splits: tuple[str, ...] = ()  # the split of each question; empty: all from train (a format-1 file)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.doc_ids) or not len(self.doc_ids):
            raise ConfigError(f"question bank: {len(self.doc_ids)} questions but vectors of shape "
                              f"{self.vectors.shape}")
        if self.splits and len(self.splits) != len(self.doc_ids):
            raise ConfigError(f"question bank: {len(self.doc_ids)} questions but {len(self.splits)} splits")

    def split_of_each(self) -> tuple[str, ...]:
        return self.splits or ("train",) * len(self.doc_ids)

    def without(self, splits: Collection[str]) -> QuestionBank | None:
        """The bank without the questions of `splits` (an evaluation of dev must not meet dev's own questions);
        None when nothing is left."""
        own = self.split_of_each()
        keep = [i for i, split in enumerate(own) if split not in splits]
        if len(keep) == len(self.doc_ids):
            return self
        if not keep:
            return None
        return QuestionBank(self.embedder, self.vectors[keep], tuple(self.doc_ids[i] for i in keep),
                            tuple(s for s in self.sources if s.rpartition(":")[2] not in splits),
                            tuple(own[i] for i in keep))

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def votes(self, queries: np.ndarray, neighbours: int, min_cosine: float = 0.0) -> list[dict[str, float]]:
        """Per query (rows of L2-normalised vectors), document id -> the summed cosine of the `neighbours` nearest
        bank questions that have it as gold, counting only those at `min_cosine` or closer (a question unlike any
        asked before gets no votes, rather than the votes of strangers)."""
        if queries.shape[1] != self.dim:
            raise ConfigError(f"question bank vectors have {self.dim} dims, the queries {queries.shape[1]}")
        similarity = queries.astype(np.float32) @ self.vectors.T  # (q, n)
        m = min(neighbours, similarity.shape[1])
        nearest = np.argpartition(-similarity, kth=m - 1, axis=1)[:, :m]
        out: list[dict[str, float]] = []
        for row, picks in zip(similarity, nearest, strict=True):
            scores: dict[str, float] = {}
            for i in picks:
                if row[i] < min_cosine:
                    continue
                for doc_id in self.doc_ids[i]:
                    scores[doc_id] = scores.get(doc_id, 0.0) + float(row[i])
            out.append(scores)
        return out

    def save(self, path: Path) -> Path:
        """float16 vectors (cosines move by < 1e-3) and the ids as JSON, in one compressed .npz."""
        meta = {"format": FORMAT, "embedder": self.embedder, "doc_ids": self.doc_ids, "sources": self.sources,
                "splits": self.split_of_each()}
        return write_arrays(path, meta, vectors=self.vectors.astype(np.float16))

    @staticmethod
    def load(path: Path) -> QuestionBank:
        if not path.is_file():
            raise ConfigError(f"the question bank {path} is missing: build it with `dossier train bank`")
        try:
            arrays, meta = read_arrays(path, ("vectors",))
        except (OSError, ValueError, KeyError) as err:
            raise ConfigError(f"the question bank {path} cannot be read ({err}): build it again with "
                              "`dossier train bank`") from err
        if meta.get("format") not in READABLE:
            raise ConfigError(f"the question bank {path} has format {meta.get('format')}, this Dossier reads "
                              f"{' and '.join(map(str, READABLE))}: build it again with `dossier train bank`")
        return QuestionBank(meta["embedder"], arrays["vectors"], tuple(tuple(d) for d in meta["doc_ids"]),
                            tuple(meta.get("sources", ())), tuple(meta.get("splits", ())))


def bank_for(cfg: DomainConfig) -> QuestionBank | None:
    """The bank `[retrieval] question_bank` names (relative to the domain folder), without the questions of the
    splits `[retrieval] bank_leave_out` names; None where there is none (or none is left)."""
    if not cfg.retrieval.question_bank:
        return None
    bank = QuestionBank.load(cfg.path(cfg.retrieval.question_bank))
    kept = bank.without(cfg.retrieval.bank_leave_out)
    if kept is not bank:
        log.info("question bank: %d of %d questions kept, the %s split's left out", 0 if kept is None else
                 len(kept.doc_ids), len(bank.doc_ids), "/".join(cfg.retrieval.bank_leave_out))
    return kept


def ranked_votes(votes: dict[str, float], keys_of: dict[str, Sequence[int]],
                 allowed: set[int] | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A query's votes as the retriever's (scores (k,), keys (k,)) arrays, best first, -1 padded: every chunk of a
    voted document that the filter allows, at its document's vote."""
    pairs = [(score, key) for doc_id, score in votes.items() for key in keys_of.get(doc_id, ())
             if allowed is None or key in allowed]
    pairs.sort(key=lambda p: (-p[0], p[1]))
    scores, keys = np.full(k, -np.inf, dtype=np.float32), np.full(k, -1, dtype=np.int64)
    for i, (score, key) in enumerate(pairs[:k]):
        scores[i], keys[i] = score, key
    return scores, keys
