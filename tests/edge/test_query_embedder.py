"""The edge query embedder is the product's onnx-int8 embedder without torch: a model with a query adapter (a
Router whose query route is Dense + Normalize, as the shipped domain embedders have) exported to a bundle's
embedder files gives the vectors the product computes, query route included (the export checks it and fails
under cosine 0.999); a route step the edge cannot run is refused at export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from api_support import needs_minilm

from edge.errors import ExportError

pytestmark = needs_minilm


@pytest.fixture(scope="module")
def adapted_minilm(minilm_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniLM + a Router: query -> Dense(384, 384, identity, a random rotation-ish map) -> Normalize."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.dense import Dense
    from sentence_transformers.base.modules.normalize import Normalize
    from sentence_transformers.base.modules.router import Router

    torch.manual_seed(0)
    base = SentenceTransformer(minilm_dir, device="cpu", local_files_only=True)
    weight = torch.eye(384) + 0.3 * torch.randn(384, 384)
    dense = Dense(384, 384, bias=False, activation_function=torch.nn.Identity(), init_weight=weight)
    router = Router.for_query_document(query_modules=[dense, Normalize()], document_modules=[Normalize()])
    out = tmp_path_factory.mktemp("adapted") / "minilm-qa"
    SentenceTransformer(modules=[*base, router], device="cpu").save(str(out))
    return out


def test_the_query_route_runs_in_numpy_and_matches_the_product(adapted_minilm, tmp_path, monkeypatch) -> None:
    from slice_index import minilm_cfg

    from domains import load_domain
    from edge.export.embedder import export_query_embedder
    from edge.query_embedder import EdgeQueryEmbedder

    monkeypatch.setenv("DOSSIER_CACHE_DIR", str(tmp_path / "cache"))  # the test model's ONNX graph stays here
    cfg = minilm_cfg(load_domain("legal"))
    cfg = replace(cfg, models=replace(cfg.models, embedder=str(adapted_minilm)))
    info = export_query_embedder(cfg, tmp_path / "embedder")
    assert info["query_route"] == ["dense", "normalize"] and info["check_cosine_min"] >= 0.999
    edge = EdgeQueryEmbedder(tmp_path / "embedder").load()
    query, document = (edge.embed(["盗窃罪怎么判"], role=role)[0] for role in ("query", "document"))
    assert abs(float(np.linalg.norm(query)) - 1) < 1e-5
    assert float(query @ document) < 0.99  # the adapter moved the query: the route really ran


def test_a_route_step_the_edge_cannot_run_is_refused() -> None:
    import torch
    from sentence_transformers.base.modules.dense import Dense
    from sentence_transformers.base.modules.router import Router

    from edge.export.embedder import route_steps

    tanh = Dense(8, 8, activation_function=torch.nn.Tanh())
    with pytest.raises(ExportError, match="Dense"):
        route_steps(Router.for_query_document(query_modules=[tanh], document_modules=[]))


def test_an_all_int8_graph_is_smaller_and_still_close(adapted_minilm, tmp_path, monkeypatch) -> None:
    from slice_index import minilm_cfg

    from domains import load_domain
    from edge.export.embedder import export_query_embedder
    from edge.layout import EMBEDDER_GRAPH

    monkeypatch.setenv("DOSSIER_CACHE_DIR", str(tmp_path / "cache"))
    cfg = minilm_cfg(load_domain("legal"))
    cfg = replace(cfg, models=replace(cfg.models, embedder=str(adapted_minilm)))
    sizes = {}
    for graph in ("matmul", "all"):
        info = export_query_embedder(cfg, tmp_path / graph, int8=graph)
        sizes[graph] = (tmp_path / graph / EMBEDDER_GRAPH).stat().st_size
        assert info["check_cosine_min"] >= (0.999 if graph == "matmul" else 0.98)
    assert sizes["all"] < 0.75 * sizes["matmul"]  # MiniLM's token table is half its weights


def test_a_weight_only_int8_graph_gives_the_fp32_vectors_in_the_least_space(adapted_minilm, tmp_path,
                                                                            monkeypatch) -> None:
    from slice_index import minilm_cfg

    from domains import load_domain
    from edge.export.embedder import export_query_embedder
    from edge.layout import EMBEDDER_GRAPH
    from edge.query_embedder import EdgeQueryEmbedder
    from retrieval.embedders import SentenceTransformerEmbedder

    monkeypatch.setenv("DOSSIER_CACHE_DIR", str(tmp_path / "cache"))
    cfg = minilm_cfg(load_domain("legal"))
    cfg = replace(cfg, models=replace(cfg.models, embedder=str(adapted_minilm)))
    texts = ["盗窃公私财物，数额较大的，处三年以下有期徒刑。", "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑。"]
    sizes = {}
    for graph in ("all", "weights"):
        info = export_query_embedder(cfg, tmp_path / graph, int8=graph, domain_texts=texts)
        sizes[graph] = (tmp_path / graph / EMBEDDER_GRAPH).stat().st_size
    assert info["check_cosine_min"] >= 0.999 and info["int8"] == "weights" and info["vocabulary"]["trimmed"]
    assert sizes["weights"] < sizes["all"]  # its kept fp32 down-projections are int8 too
    whole = export_query_embedder(cfg, tmp_path / "whole", int8="weights")  # --embedder-vocab full
    assert whole["check_cosine_min"] >= 0.999 and not whole["vocabulary"]["trimmed"]

    queries = ["盗窃罪怎么判", "公司拖欠工资怎么办", "How is theft punished?"]
    fp32 = SentenceTransformerEmbedder(cfg.models.embedder, replace(cfg.embedding, backend="onnx", threads=1),
                                       show_progress=False).load().embed(queries, role="query")
    cosines = {}
    for graph in ("all", "weights"):
        edge = EdgeQueryEmbedder(tmp_path / graph).load()
        cosines[graph] = float(np.min(np.sum(edge.embed(queries, role="query") * fp32, axis=1)))
    assert (edge.backend, edge.precision) == ("onnx", "fp32")
    # no activation quantisation: the error left is the weights' rounding, well under the dynamic int8 graph's
    assert 1 - cosines["weights"] < 0.5 * (1 - cosines["all"])
