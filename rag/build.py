"""`build_pipeline`: a domain config -> a ready `RagPipeline` (retriever from `rag.build_retrieval`, generator
from `rag.build_generation`). Callers may hand in either part already built (tests, benchmarks)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from core.protocols import Generator, Retriever
from domains.config import DomainConfig
from rag.build_generation import build_generator
from rag.pipeline import RagPipeline

log = logging.getLogger(__name__)


def build_pipeline(
    cfg: DomainConfig,
    *,
    backend: str | None = None,
    retriever: Retriever | None = None,
    generator: Generator | None = None,
    stages: Sequence[str] | None = None,
    index_dir: Path | None = None,
    load: bool = True,
) -> RagPipeline:
    """With `load`, the index and the generator's model are loaded now (a server does this once, at start-up)."""
    if retriever is None:
        from rag.build_retrieval import build_retriever

        retriever = build_retriever(cfg, stages=stages, index_dir=index_dir, load=load)
    if generator is None:
        generator = build_generator(cfg, backend)
    if load:
        generator.load()
    log.info("pipeline %s: generator %s", cfg.name, generator.name)
    return RagPipeline(cfg, retriever, generator)
