"""The exported bundle answers like the service: in the project's environment, through `edge.runtime` (the same
RagPipeline, retriever and citation check, over the bundle's files only)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from api_support import OUT_OF_DOMAIN, needs_minilm
from edge_support import QUESTION

from edge import layout

pytestmark = needs_minilm


@pytest.fixture(scope="module")
def edge_pipe(edge_bundle):
    from edge.runtime import Threads, edge_pipeline, open_bundle

    return edge_pipeline(open_bundle(edge_bundle[0]), Threads(decode=1, prefill=1, embed=1), n_ctx=2048)


def test_the_bundle_holds_every_part_and_its_archive_the_same_files(edge_bundle) -> None:
    folder, archive = edge_bundle
    manifest = json.loads((folder / layout.MANIFEST).read_text(encoding="utf-8"))
    for part in (layout.GENERATOR, f"{layout.EMBEDDER_DIR}/{layout.EMBEDDER_GRAPH}", f"{layout.INDEX_DIR}/dense.faiss",
                 f"{layout.INDEX_DIR}/docstore.sqlite", f"{layout.DOMAIN_DIR}/{layout.DOMAIN_CONFIG}",
                 layout.MODELFILE, layout.REQUIREMENTS, "runner/rag/citations.py", "runner/edge/cli.py"):
        assert part in manifest["files"], part
    assert manifest["embedder"]["check_cosine_min"] >= 0.999
    assert manifest["generator"]["quant"] == "as shipped" and manifest["generator"]["adapter"] is None
    with tarfile.open(archive) as tar:
        names = {m.name for m in tar.getmembers() if m.isfile()}
    assert names == {f"{folder.name}/{rel}" for rel in [*manifest["files"], layout.MANIFEST]}


def test_the_runner_copies_the_product_code_byte_for_byte(edge_bundle) -> None:
    folder, _ = edge_bundle
    project = Path(__file__).resolve().parents[2]
    for module in ("rag/citations.py", "rag/support.py", "rag/prompting.py", "rag/pipeline.py", "retrieval/hybrid.py"):
        assert (folder / "runner" / module).read_bytes() == (project / module).read_bytes(), module
    assert not (folder / "runner" / "edge" / "export").exists()


def test_a_covered_question_gets_a_cited_supported_answer(edge_pipe) -> None:
    answer = edge_pipe.answer(QUESTION)
    assert not answer.abstained
    assert answer.text.startswith("故意杀人的") and answer.citations
    assert "第二百三十二条" in answer.citations[0].title
    assert answer.trace["citations"]["precision"] == 1.0


def test_an_off_topic_question_abstains_without_generating(edge_pipe) -> None:
    answer = edge_pipe.answer(OUT_OF_DOMAIN[0])
    assert answer.abstained and not answer.citations
    assert answer.text == edge_pipe.cfg.prompts.abstain


def test_the_modelfile_names_the_gguf_and_the_system_prompt(edge_bundle, edge_cfg) -> None:
    text = (edge_bundle[0] / layout.MODELFILE).read_text(encoding="utf-8")
    assert f"FROM ./{layout.GENERATOR}" in text and edge_cfg.prompts.system in text
    assert 'PARAMETER stop "<|im_end|>"' in text
