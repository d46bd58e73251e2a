"""The one place retrieval configuration becomes classes: embedder, tokenizer, FAISS spec, reranker, retriever,
and the index builder. Every choice is an explicit `match` on the config value."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from core.errors import ConfigError
from core.paths import index_root, vector_cache_dir
from core.stages import Stage
from domains.config import DomainConfig, EmbeddingConfig
from retrieval.domain_gate import gate_for
from retrieval.embedders import GRAPH_BACKENDS, SentenceTransformerEmbedder
from retrieval.faiss_index import FaissIndexSpec
from retrieval.hybrid import HybridRetriever
from retrieval.index_build import IndexBuilder
from retrieval.question_bank import bank_for
from retrieval.reranker import CrossEncoderReranker
from retrieval.scope_router import router_for
from retrieval.store import IndexStore
from retrieval.vector_cache import INTERCHANGEABLE_BACKENDS, VectorCache, document_identity
from retrieval.vector_pack import PACK_DIR
from retrieval.zh_tokenizer import JiebaTokenizer

log = logging.getLogger(__name__)


def build_embedder(cfg: DomainConfig, *, show_progress: bool = True) -> SentenceTransformerEmbedder:
    emb: EmbeddingConfig = cfg.embedding
    match emb.backend:
        case "torch" | "onnx" | "onnx-int8" | "openvino" | "openvino-int8":
            return SentenceTransformerEmbedder(cfg.models.embedder, emb, show_progress=show_progress)
        case other:
            raise ConfigError.invalid_choice("embedding.backend", other, ("torch", *GRAPH_BACKENDS))


def document_backend(emb: EmbeddingConfig) -> str:
    """The runtime that embeds the documents no cache or pack holds. "auto": openvino-int8 where the `openvino`
    extra is installed and its vectors may share the cache with the query backend's, else the query backend."""
    match emb.document_backend:
        case "auto":
            installed = all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))
            shareable = emb.backend in INTERCHANGEABLE_BACKENDS
            return "openvino-int8" if installed and shareable else emb.backend
        case chosen:
            return chosen


def build_document_embedder(cfg: DomainConfig, query_embedder: SentenceTransformerEmbedder,
                            ) -> SentenceTransformerEmbedder:
    """The embedder of new documents, not loaded (DocumentVectors loads it when there is something to embed)."""
    backend = document_backend(cfg.embedding)
    if backend == cfg.embedding.backend:
        return query_embedder
    log.info("%s: new documents are embedded with the %s backend (embedding.document_backend = %r)",
             cfg.name, backend, cfg.embedding.document_backend)
    return SentenceTransformerEmbedder(cfg.models.embedder, replace(cfg.embedding, backend=backend))


def build_faiss_spec(cfg: DomainConfig) -> FaissIndexSpec:
    match cfg.retrieval.index:
        case "flat":
            return FaissIndexSpec(kind="flat")
        case "hnsw":
            return FaissIndexSpec(kind="hnsw", hnsw_m=32, hnsw_ef_construction=200, hnsw_ef_search=128)
        case "ivfpq":
            return FaissIndexSpec(kind="ivfpq", ivf_nprobe=16)
        case other:
            raise ConfigError.invalid_choice("retrieval.index", other, ("flat", "hnsw", "ivfpq"))


def build_tokenizer(cfg: DomainConfig) -> JiebaTokenizer:
    """jieba with the domain's user dictionary when the file exists (it is optional)."""
    user_dict = cfg.path(cfg.retrieval.user_dict) if cfg.retrieval.user_dict else None
    if user_dict is not None and not user_dict.is_file():
        log.info("%s: user dictionary %s not found; plain jieba", cfg.name, user_dict)
    return JiebaTokenizer(user_dict)


def build_reranker(cfg: DomainConfig) -> CrossEncoderReranker | None:
    match cfg.models.reranker:
        case "":
            return None
        case model:  # the [embedding] section places it too: one precision / device / threads choice per domain
            emb = cfg.embedding
            return CrossEncoderReranker(model, precision=emb.precision, device=emb.device, threads=emb.threads)


def build_retriever(
    cfg: DomainConfig,
    *,
    stages: Sequence[str] | None = None,
    index_dir: Path | None = None,
    load: bool = True,
) -> HybridRetriever:
    """`index_dir`: an index root (with `current`) or one version dir; default the domain's index root."""
    stages = tuple(stages or cfg.retrieval.stages)
    retriever = HybridRetriever(
        cfg.retrieval,
        index_location=index_dir or index_root(cfg.name),
        embedder=build_embedder(cfg, show_progress=False),
        tokenizer=build_tokenizer(cfg),
        faiss_spec=build_faiss_spec(cfg),
        reranker=build_reranker(cfg) if Stage.RERANK in stages else None,
        stages=stages,
        bank=bank_for(cfg),
        gate=gate_for(cfg), router=router_for(cfg),
    )
    return retriever.load() if load else retriever


def build_index_builder(cfg: DomainConfig, *, root: Path | None = None, use_pack: bool = True,
                        pack_root: Path | None = None) -> IndexBuilder:
    """The writer of the domain's index versions, its embedder loaded. Vectors come from the content-keyed cache
    (`$DOSSIER_HOME/vectors/`), then the domain's shipped vector pack (`domains/<d>/vectors/`, or under
    `pack_root` for a config whose root is elsewhere: an eval pool), then the embedder."""
    embedder = build_embedder(cfg).load()
    cache = open_vector_cache(embedder)
    pack_dir = (pack_root or cfg.root) / PACK_DIR if use_pack else None
    return IndexBuilder(cfg.name, IndexStore(root or index_root(cfg.name)), embedder, build_tokenizer(cfg),
                        build_faiss_spec(cfg), vector_cache=cache, pack_dir=pack_dir,
                        document_embedder=build_document_embedder(cfg, embedder))


def open_vector_cache(embedder: SentenceTransformerEmbedder) -> VectorCache:
    """The content-keyed vector cache of a loaded embedder's document identity."""
    return VectorCache.for_identity(vector_cache_dir(), document_identity(embedder), embedder.dim)
