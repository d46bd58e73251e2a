"""An edge bundle exported from tiny local parts, once per test run: the legal slice index (MiniLM + BM25 over
Criminal Law articles 232-276, tests/slice_index.py), MiniLM as the ONNX int8 query embedder, and a scripted tiny
GGUF (tests/tiny_gguf.py) whose greedy answer cites passage [1]."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

# article 232's own words: supported by it, so the citation check passes when passage [1] is that article (the
# slice retriever ranks it first for this question)
SCRIPT = "故意杀人的，处死刑或者十年以上有期徒刑[1]。"


def _needs_llama_cpp() -> None:
    pytest.importorskip("llama_cpp", reason="needs the llama.cpp wheel: make llama-cpp-wheel")


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_gguf import write_scripted_gguf
    from tiny_models import build_tiny_tokenizer

    pytest.importorskip("gguf")
    folder = tmp_path_factory.mktemp("tiny-gguf")
    build_tiny_tokenizer(folder)
    return write_scripted_gguf(folder, folder / "model.gguf", SCRIPT)


@pytest.fixture(scope="session")
def edge_cfg(calibrated_threshold: float, tiny_gguf: Path):
    """The legal domain as the slice tests serve it (MiniLM, RRF), greedy, with the calibrated threshold."""
    from slice_index import minilm_cfg

    from domains import load_domain

    cfg = minilm_cfg(load_domain("legal"))
    # no shipped adapter: the domain's was trained on the real 0.5B model, not the tiny GGUF these tests export
    tiny = replace(cfg.models, generator_gguf=str(tiny_gguf), generator_adapter="", generator_adapter_sha256="")
    return replace(cfg, models=tiny,
                   generation=replace(cfg.generation, temperature=0.0, max_new_tokens=64),
                   abstention=replace(cfg.abstention, threshold=calibrated_threshold, score="dense"))


@pytest.fixture(scope="session")
def edge_bundle(edge_cfg, slice_retriever, tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    """(bundle folder, archive) exported by `export_edge` from the tiny parts."""
    _needs_llama_cpp()
    from edge.export.bundle import ExportRequest, export_edge

    out = tmp_path_factory.mktemp("edge") / "legal-edge"
    result = export_edge(ExportRequest(edge_cfg, out, gguf=tiny_gguf, index_dir=slice_retriever.index_location))
    return result.folder, result.archive
