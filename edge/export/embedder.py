"""The domain's embedder in a torch-free form: the ONNX int8 graph the product's `onnx-int8` backend runs (exported
and quantised once, cached: retrieval/onnx_embedding.py), the model's fast tokenizer as one `tokenizers` file, its
prompts, and the query route (the domain's query adapter: Dense + Normalize) as numpy weights.

Documents keep the vectors already in the index; only queries are embedded at the edge. The export then embeds a
few queries both ways, with the bundle's `EdgeQueryEmbedder` and with the product's `onnx-int8` embedder (`onnx`, the
fp32 graph, for `--embedder-int8 weights`, whose int8 is storage only: edge/export/int8_weights.py), and refuses a
bundle whose vectors differ (cosine under the graph's bound in `GRAPHS`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from domains.config import DomainConfig
from edge.errors import ExportError
from edge.export.fp16_weights import store_fp16
from edge.export.int8_weights import store_int8
from edge.export.vocab_trim import check_same_tokens, seen_token_ids, trim_token_table, trim_vocabulary
from edge.layout import EMBEDDER_CONFIG, EMBEDDER_GRAPH, EMBEDDER_TOKENIZER, QUERY_ROUTE, WEIGHTS_ONLY
from edge.query_embedder import EdgeQueryEmbedder
from models.registry import resolve_model
from retrieval.embedders import SentenceTransformerEmbedder
from retrieval.onnx_embedding import chain_and_router, down_projections, exported_graph, quantised_graph

log = logging.getLogger(__name__)

# which weights are int8 (edge.layout.EMBEDDER_GRAPHS, the CLI's choices) -> (the product backend whose query
# vectors the bundle's are checked against, the least cosine the export accepts)
GRAPHS = {
    "matmul": ("onnx-int8", 0.999),  # the product's own graph (token table fp32): only float summation order differs
    # the 262k x 768 token table int8 too: 981 MB -> 377 MB for EmbeddingGemma; measured cosine with the product's
    # graph 0.994 (queries) / 0.991 (statutes), recall: bench/bench_edge_vs_full.py
    "all": ("onnx-int8", 0.98),
    # "all", and the fp32 weights it keeps (the MLP down-projections) stored as fp16: 215 -> ~175 MB with the
    # domain's vocabulary (edge.export.fp16_weights)
    "all-fp16": ("onnx-int8", 0.98),
    # int8 storage only, fp32 compute (edge.export.int8_weights): no activation quantisation, so the vectors are
    # the fp32 graph's within weight rounding (1 - cosine 0.00015 median on 81 legal questions, one scale per 32
    # weights; the dynamic-int8 graphs 0.0047); ~150 MB with the domain's vocabulary, about twice their query time
    WEIGHTS_ONLY: ("onnx", 0.999),
}
GRAPH_NOTES = {
    "matmul": "onnx int8 weights (MatMul per channel; MLP down-projections fp32), activations int8 per batch",
    "all": "onnx int8 weights (MatMul per channel, token table; MLP down-projections fp32), "
           "activations int8 per batch",
    "all-fp16": "onnx int8 weights (MatMul per channel, token table; MLP down-projections stored fp16, run fp32), "
                "activations int8 per batch",
    WEIGHTS_ONLY: "onnx int8-stored weights (MatMul / Gemm per 32 inputs, token table per row), run fp32",
}
ALL_INT8_FILE = "model.int8-matmul-gather-keepdown.onnx"
CHECK_QUERIES = ("盗窃罪怎么处罚？", "How is theft punished?", "医疗纠纷如何处理", "公司债券发行条件")


def route_steps(router: Any) -> tuple[list[str], dict[str, np.ndarray]]:
    """The query route of a sentence-transformers Router as ("dense" | "normalize") steps and their weights."""
    if router is None:
        return [], {}
    steps: list[str] = []
    weights: dict[str, np.ndarray] = {}
    for i, module in enumerate(router.sub_modules["query"]):
        kind = type(module).__name__
        activation = type(getattr(module, "activation_function", None)).__name__
        if kind == "Dense" and activation == "Identity":
            steps.append("dense")
            weights[f"{i}.weight"] = module.linear.weight.detach().float().numpy()  # (out, in)
            if module.linear.bias is not None:
                weights[f"{i}.bias"] = module.linear.bias.detach().float().numpy()
        elif kind == "Normalize":
            steps.append("normalize")
        else:
            raise ExportError(f"the embedder's query route has a {kind} ({activation}) step; the edge runs Dense "
                              "with an identity activation and Normalize only")
    return steps, weights


def all_int8_graph(fp32_path: Path) -> Path:
    """The product's int8 recipe (retrieval.onnx_embedding.quantised_graph) with the token table's Gather quantised
    too, beside it in the ONNX cache, made once."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = fp32_path.with_name(ALL_INT8_FILE)
    if not path.is_file():
        tmp = path.with_name(f".tmp-{os.getpid()}-{ALL_INT8_FILE}")
        try:
            quantize_dynamic(fp32_path, tmp, op_types_to_quantize=["MatMul", "Gather"], per_channel=True,
                             weight_type=QuantType.QInt8, nodes_to_exclude=down_projections(fp32_path))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def export_query_embedder(cfg: DomainConfig, dest: Path, threads: int = 1, int8: str = "matmul",
                          domain_texts: Iterable[str] | None = None) -> dict[str, Any]:
    """Write the embedder files into `dest`; returns what the manifest records about them. `int8`: a GRAPHS key.
    `domain_texts` (the domain's chunks): trim the vocabulary to what they and a user's query need
    (edge.export.vocab_trim); None keeps the whole vocabulary."""
    from sentence_transformers import SentenceTransformer

    if int8 not in GRAPHS:
        raise ExportError(f"--embedder-int8 {int8!r}: choose one of {', '.join(GRAPHS)}")
    path = resolve_model(cfg.models.embedder)
    # CPU on purpose: the graph is traced for onnxruntime's CPU provider, the bundle's only runtime
    st = SentenceTransformer(path, device="cpu", local_files_only=True)
    fp32 = exported_graph(st, path, "onnx-int8")
    if int8 == "matmul":
        graph = quantised_graph(fp32)
    elif int8 == WEIGHTS_ONLY:
        graph = fp32  # cut to the domain's vocabulary first, then its weights are stored as int8 (below)
    else:
        graph = all_int8_graph(fp32)  # "all-fp16": then its fp32 down-projections halved (below)
    dest.mkdir(parents=True, exist_ok=True)
    prompts = getattr(st, "prompts", None) or {}
    tokenizer = st.tokenizer.backend_tokenizer
    pad_id = int(st.tokenizer.pad_token_id or 0)
    vocab: dict[str, Any] = {"tokens": tokenizer.get_vocab_size(), "trimmed": False}
    if domain_texts is None:
        if int8 != WEIGHTS_ONLY:  # that one is written from the fp32 graph below
            shutil.copyfile(graph, dest / EMBEDDER_GRAPH)
        (dest / EMBEDDER_TOKENIZER).write_text(tokenizer.to_str(), encoding="utf-8")
    else:
        document, query = str(prompts.get("document", "")), str(prompts.get("query", ""))
        texts = [document + t for t in domain_texts] + [query + q for q in CHECK_QUERIES]
        pad_id, vocab = _write_trimmed(tokenizer, graph, dest, texts, pad_id)
    fp16_saved = store_fp16(dest / EMBEDDER_GRAPH) if int8 == "all-fp16" else 0
    if int8 == WEIGHTS_ONLY:  # the fp32 graph (trimmed) was written: store its weights as int8
        store_int8(dest / EMBEDDER_GRAPH if domain_texts is not None else fp32, dest / EMBEDDER_GRAPH)
    steps, weights = route_steps(chain_and_router(st)[1])
    if weights:
        np.savez(dest / QUERY_ROUTE, **weights)
    full_dim = int(st.get_embedding_dimension() or 0)
    info = {
        "name": cfg.models.embedder,
        "dim": cfg.embedding.dim if 0 < cfg.embedding.dim < full_dim else full_dim,
        "max_length": min(cfg.embedding.max_seq_length, int(st.max_seq_length or cfg.embedding.max_seq_length)),
        "prompts": {role: str(prompts.get(role, "")) for role in ("query", "document")},
        "pad_id": pad_id, "pad_token": str(st.tokenizer.pad_token or ""),
        "padding_side": str(st.tokenizer.padding_side), "query_route": steps,
        "graph": GRAPH_NOTES[int8],
        "int8": int8,
        "vocabulary": vocab,
        "fp16_bytes_saved": fp16_saved,
    }
    (dest / EMBEDDER_CONFIG).write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    del st
    info["check_cosine_min"] = check_against_product(cfg, dest, threads, *GRAPHS[int8])
    return info


def _write_trimmed(tokenizer: Any, graph: Path, dest: Path, texts: list[str], pad_id: int) -> tuple[int, dict]:
    """The trimmed tokenizer and graph into `dest`, checked to tokenise `texts` exactly as before; returns the new
    pad id and what the manifest records."""
    from tokenizers import Tokenizer

    trimmed = trim_vocabulary(json.loads(tokenizer.to_str()), seen_token_ids(tokenizer, texts))
    trimmed_tokenizer = Tokenizer.from_str(json.dumps(trimmed.spec, ensure_ascii=False))
    check_same_tokens(tokenizer, trimmed_tokenizer, trimmed, texts)
    (dest / EMBEDDER_TOKENIZER).write_text(json.dumps(trimmed.spec, ensure_ascii=False), encoding="utf-8")
    rows = trim_token_table(graph, dest / EMBEDDER_GRAPH, trimmed.old_ids)
    return trimmed.new_id(pad_id), {"tokens": len(trimmed.old_ids), "of": rows, "trimmed": True,
                                    "checked_texts": len(texts)}


def check_against_product(cfg: DomainConfig, dest: Path, threads: int, backend: str, least: float) -> float:
    """The least cosine between the bundle's query vectors and the product's `backend` ones on CHECK_QUERIES;
    under `least` the export stops."""
    product = SentenceTransformerEmbedder(cfg.models.embedder, replace(cfg.embedding, backend=backend,
                                                                       threads=threads), show_progress=False)
    expected = product.load().embed(list(CHECK_QUERIES), role="query")
    got = EdgeQueryEmbedder(dest, threads=threads).load().embed(list(CHECK_QUERIES), role="query")
    cosine = float(np.min(np.sum(expected * got, axis=1)))
    if cosine < least:
        raise ExportError(f"the bundle's query embedder disagrees with the product's {backend} embedder (least "
                          f"cosine {cosine:.4f} < {least}); the export stopped rather than ship it")
    log.info("edge query embedder matches the product's %s one: least cosine %.6f", backend, cosine)
    return round(cosine, 6)
