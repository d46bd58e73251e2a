"""Opening a bundle: verify it against its manifest, read its domain config, and build the product's own
`RagPipeline` over its files (HybridRetriever on the bundled index with the edge query embedder, llama.cpp on the
bundled GGUF). Nothing is fetched and nothing outside the bundle is read."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.stages import Stage
from domains.config import DomainConfig, domain_from_mapping
from edge.errors import BundleError
from edge.layout import DOMAIN_CONFIG, DOMAIN_DIR, EMBEDDER_DIR, GENERATOR, INDEX_DIR
from edge.manifest import verify_bundle
from edge.query_embedder import EdgeQueryEmbedder
from generation.llama_cpp_gen import LlamaCppGenerator
from rag.build_retrieval import build_faiss_spec, build_tokenizer
from rag.pipeline import RagPipeline
from retrieval.domain_gate import gate_for
from retrieval.hybrid import HybridRetriever
from retrieval.question_bank import bank_for
from retrieval.scope_router import router_for

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Threads:
    """llama.cpp decode / prompt threads and onnxruntime's; 0 takes the domain's [generation] / [embedding]."""

    decode: int = 0
    prefill: int = 0
    embed: int = 0


@dataclass(frozen=True, slots=True)
class EdgeBundle:
    root: Path
    manifest: dict[str, Any]
    cfg: DomainConfig

    @property
    def domain(self) -> str:
        return self.cfg.name


def open_bundle(root: Path, *, hashes: bool = True) -> EdgeBundle:
    """The verified bundle at `root` (`hashes=False` checks sizes only: seconds saved on a trusted copy)."""
    root = root.resolve()
    manifest = verify_bundle(root, hashes=hashes)
    path = root / DOMAIN_DIR / DOMAIN_CONFIG
    try:
        cfg = domain_from_mapping(json.loads(path.read_text(encoding="utf-8")), root=root / DOMAIN_DIR)
    except ValueError as err:
        raise BundleError(f"{path}: not valid JSON ({err}); export the bundle again") from err
    return EdgeBundle(root, manifest, cfg)


def edge_pipeline(bundle: EdgeBundle, threads: Threads = Threads(), n_ctx: int = 4096) -> RagPipeline:
    """The domain's RagPipeline over the bundle, loaded (index opened, models in memory)."""
    cfg, root = bundle.cfg, bundle.root
    stages = [s for s in cfg.retrieval.stages if s != Stage.RERANK]  # the export refuses a reranker; be sure
    embedder = EdgeQueryEmbedder(root / EMBEDDER_DIR, threads=threads.embed or cfg.embedding.threads)
    retriever = HybridRetriever(
        cfg.retrieval, index_location=root / INDEX_DIR, embedder=embedder, tokenizer=build_tokenizer(cfg),
        faiss_spec=build_faiss_spec(cfg), stages=stages, bank=bank_for(cfg),
        gate=gate_for(cfg), router=router_for(cfg),
    ).load()
    gen = cfg.generation
    generator = LlamaCppGenerator(str(root / GENERATOR), n_threads=threads.decode or gen.threads,
                                  n_threads_batch=threads.prefill or gen.prefill_threads, n_ctx=n_ctx).load()
    log.info("edge bundle %s (%s): ready", root, cfg.name)
    return RagPipeline(replace(cfg, retrieval=replace(cfg.retrieval, stages=tuple(stages))), retriever, generator)
