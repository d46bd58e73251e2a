"""Fixtures of the API tests that store things per owner (conversations, collections): the legal slice over real
retrieval (MiniLM + jieba BM25, the shared `slice_retriever`) with a generator that always cites passage [1], so
every answer has a citation to check, export and follow into an uploaded file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from core.protocols import GenerationParams, Message

CITED_ANSWER = "依据所列材料，答案见此[1]。"


class CitingGenerator:
    """Answers every prompt with one sentence citing [1]: what is under test is what the server keeps and finds,
    not what a model writes."""

    name = "citing"

    def load(self) -> CitingGenerator:
        return self

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        return CITED_ANSWER

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        yield from (CITED_ANSWER[i : i + 4] for i in range(0, len(CITED_ANSWER), 4))


@pytest.fixture(scope="session")
def citing_pipeline(legal_cfg, slice_retriever):
    from rag.build import build_pipeline

    return build_pipeline(legal_cfg, retriever=slice_retriever, generator=CitingGenerator())
