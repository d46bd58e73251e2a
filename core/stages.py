"""The names of retrieval stages and fusion methods, defined once.

A stage's name is what it writes into `Hit.retriever` and as its key in `Hit.stage_scores`; `domain.toml` uses the
same words (`[retrieval] stages`, `fusion`; `[abstention] score`). They are `StrEnum`s, so a member equals its
string ("dense" == Stage.DENSE), keys JSON the same, and a config value that is not a member is refused.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """A retrieval stage: the two first stages, and the optional second one."""

    DENSE = "dense"  # cosine of the query and chunk embeddings (FAISS)
    BM25 = "bm25"  # BM25 over jieba words + character bigrams
    RERANK = "rerank"  # cross-encoder score of (query, chunk)


class Fusion(StrEnum):
    """How the first stages' rankings are fused; the method's name is also the fused score's key."""

    RRF = "rrf"  # weighted reciprocal rank fusion, Cormack et al. 2009
    ZSCORE = "zscore"  # weighted sum of per-list z-scores


class AbstentionScore(StrEnum):
    """Which score of the best hit `[abstention]` compares with its threshold."""

    DENSE = "dense"
    RERANK = "rerank"
    FUSED = "fused"  # the score of whichever `Fusion` the domain's retriever runs

    def stage_key(self, fusion: Fusion) -> str:
        """The `Hit.stage_scores` key holding this score when the retriever fuses with `fusion`."""
        return str(fusion) if self is AbstentionScore.FUSED else str(self)


FIRST_STAGES = (Stage.DENSE, Stage.BM25)
# not a ranking: the domain gate's margin for the query (retrieval/domain_gate.py), carried on each of its hits and
# read by the abstention stage
GATE_STAGE = "domain_gate"
# not a ranking: the share of the query's idf-weighted terms a hit holds (retrieval/term_coverage.py), read by the
# abstention stage to tell a near miss from an answer
COVERAGE_STAGE = "coverage"
