"""Bad export input is refused with an error that says what to do, and leaves nothing behind; a bundle that changed
after export fails verification; a LoRA merge adds exactly scale * B @ A."""

from __future__ import annotations

import errno
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from api_support import needs_minilm

from edge.errors import BundleError, ExportError
from edge.manifest import verify_bundle

pytestmark = needs_minilm


def _request(edge_cfg, slice_retriever, tiny_gguf: Path, out: Path, **kw):
    from edge.export.bundle import ExportRequest

    return ExportRequest(edge_cfg, out, gguf=tiny_gguf, index_dir=slice_retriever.index_location, **kw)


def _export(*args, **kw):
    from edge.export.bundle import export_edge

    return export_edge(_request(*args, **kw))


def _nothing_left(parent: Path) -> None:
    assert sorted(p.name for p in parent.iterdir()) == [], "a refused export must leave nothing"


def _lora(folder: Path, tensors: dict[str, np.ndarray], alpha: float = 4.0, rank: int = 2) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank, "lora_alpha": alpha}))
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def _q_proj_lora(folder: Path, in_dim: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_{}.weight"
    return _lora(folder, {key.format("A"): rng.standard_normal((2, in_dim)).astype(np.float32),
                          key.format("B"): rng.standard_normal((64, 2)).astype(np.float32)})


def test_an_unknown_quant_is_refused_naming_the_valid_ones(edge_cfg, slice_retriever, tiny_gguf, tmp_path) -> None:
    with pytest.raises(ExportError, match="q4_k_m.*q8_0|q8_0.*q4_k_m"):
        _export(edge_cfg, slice_retriever, tiny_gguf, tmp_path / "b", quant="q3_fancy")
    _nothing_left(tmp_path)


def test_an_output_quant_is_checked_before_anything_is_written(edge_cfg, slice_retriever, tiny_gguf,
                                                               tmp_path) -> None:
    with pytest.raises(ExportError, match="q4_0.*q8_0"):
        _export(edge_cfg, slice_retriever, tiny_gguf, tmp_path / "b", quant="q4_0", output_quant="q6_k")
    with pytest.raises(ExportError, match="give --quant too"):
        _export(edge_cfg, slice_retriever, tiny_gguf, tmp_path / "b", output_quant="q4_0")
    _nothing_left(tmp_path)


def test_an_unknown_vocabulary_choice_is_refused(edge_cfg, slice_retriever, tiny_gguf, tmp_path) -> None:
    with pytest.raises(ExportError, match="domain, full"):
        _export(edge_cfg, slice_retriever, tiny_gguf, tmp_path / "b", embedder_vocab="all")
    _nothing_left(tmp_path)


def test_the_bundles_embedder_keeps_the_vocabulary_of_its_chunks(edge_bundle) -> None:
    folder, _ = edge_bundle
    vocabulary = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["embedder"]["vocabulary"]
    assert vocabulary["trimmed"] and vocabulary["tokens"] < vocabulary["of"]
    assert vocabulary["checked_texts"] > 53  # every chunk of the slice (and its titles) re-tokenised the same


def test_the_bundle_carries_the_question_bank_its_retriever_reads(edge_cfg, tmp_path) -> None:
    import numpy as np

    from domains.config import domain_from_mapping
    from edge.export.bundle import _write_domain
    from retrieval.question_bank import QuestionBank, bank_for

    bank = QuestionBank("all-minilm-l6-v2", np.eye(2, dtype=np.float32), (("a",), ("b",))).save(tmp_path / "b.npz")
    cfg = replace(edge_cfg, retrieval=replace(edge_cfg.retrieval, question_bank=str(bank)))
    _write_domain(cfg, tmp_path / "domain")
    data = json.loads((tmp_path / "domain" / "domain.json").read_text(encoding="utf-8"))
    assert data["retrieval"]["question_bank"] == "models/b.npz"  # inside the bundle, whatever its source path
    carried = bank_for(domain_from_mapping(data, root=tmp_path / "domain"))
    assert carried is not None and carried.doc_ids == (("a",), ("b",))


def test_the_bundle_carries_the_domain_gate_its_retriever_reads(edge_cfg, tmp_path) -> None:
    from domains.config import domain_from_mapping
    from edge.export.bundle import _write_domain
    from retrieval.domain_gate import DomainGate, gate_for

    gate = DomainGate("all-minilm-l6-v2", np.ones(4, np.float32), 0.5, 0.25).save(tmp_path / "g.npz")
    cfg = replace(edge_cfg, retrieval=replace(edge_cfg.retrieval, domain_gate=str(gate)))
    _write_domain(cfg, tmp_path / "domain")
    data = json.loads((tmp_path / "domain" / "domain.json").read_text(encoding="utf-8"))
    assert data["retrieval"]["domain_gate"] == "models/g.npz"
    carried = gate_for(domain_from_mapping(data, root=tmp_path / "domain"))
    assert carried is not None and carried.threshold == 0.25


def test_a_shipped_adapter_the_domain_lacks_names_the_fix(edge_cfg, slice_retriever, tiny_gguf, tmp_path) -> None:
    with pytest.raises(ExportError, match=r"ships no tuned generator adapter.*dossier train sft.*--adapter none"):
        _export(edge_cfg, slice_retriever, tiny_gguf, tmp_path / "b", adapter="shipped")
    _nothing_left(tmp_path)


def test_the_default_adapter_is_what_the_domain_serves(edge_cfg, tmp_path) -> None:
    from edge.export.generator import resolve_adapter

    assert resolve_adapter(edge_cfg, "served") is None  # names no adapter: the base GGUF, as the service answers
    adapter = _q_proj_lora(tmp_path / "domain" / "models" / "generator-lora")
    naming = replace(edge_cfg, root=tmp_path / "domain", models=replace(
        edge_cfg.models, generator_adapter="models/generator-lora"))
    served = resolve_adapter(naming, "served")
    assert served is not None and served.path == adapter and resolve_adapter(naming, "none") is None


@pytest.mark.parametrize("damage", ["garbage weights", "no config", "missing adapter"])
def test_a_missing_or_corrupt_adapter_is_refused(edge_cfg, slice_retriever, tiny_gguf, tmp_path, damage) -> None:
    adapter = _q_proj_lora(tmp_path / "adapter")
    if damage == "garbage weights":
        (adapter / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    elif damage == "no config":
        (adapter / "adapter_config.json").unlink()
    else:
        shutil.rmtree(adapter)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportError, match="adapter"):
        _export(edge_cfg, slice_retriever, tiny_gguf, out / "b", adapter=str(adapter))
    _nothing_left(out)


def test_an_adapter_for_another_model_fails_mid_export_and_leaves_nothing(edge_cfg, slice_retriever, tiny_gguf,
                                                                          tmp_path) -> None:
    adapter = _q_proj_lora(tmp_path / "adapter", in_dim=96)  # the tiny model's q_proj reads 64 features
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportError, match="trained on another model"):
        _export(edge_cfg, slice_retriever, tiny_gguf, out / "b", adapter=str(adapter))
    _nothing_left(out)


def test_too_little_free_disk_is_refused_before_writing(edge_cfg, slice_retriever, tiny_gguf, tmp_path,
                                                        monkeypatch) -> None:
    import edge.export.bundle as bundle

    monkeypatch.setattr(bundle.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9 - 4096, 4096))
    with pytest.raises(ExportError, match="not enough disk"):
        _export(edge_cfg, slice_retriever, tiny_gguf, tmp_path / "b")
    _nothing_left(tmp_path)


def test_a_disk_that_fills_up_mid_export_leaves_no_partial_bundle(edge_cfg, slice_retriever, tiny_gguf, tmp_path,
                                                                  monkeypatch) -> None:
    import edge.export.bundle as bundle

    def full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bundle, "_archive", full)
    with pytest.raises(ExportError, match="filled up"):
        _export(edge_cfg, slice_retriever, tiny_gguf, tmp_path / "b")
    _nothing_left(tmp_path)


def test_an_existing_bundle_is_kept_unless_forced(edge_bundle, edge_cfg, slice_retriever, tiny_gguf) -> None:
    with pytest.raises(ExportError, match="--force"):
        _export(edge_cfg, slice_retriever, tiny_gguf, edge_bundle[0])


@pytest.mark.parametrize("change", ["edit", "delete", "add"])
def test_verify_names_a_file_changed_after_export(edge_bundle, tmp_path, change) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(edge_bundle[0], copy)
    assert verify_bundle(copy)["domain"] == "legal"
    target = copy / "runner" / "rag" / "citations.py"
    match change:
        case "edit":  # same size: only the sha256 sees it
            data = bytearray(target.read_bytes())
            data[-2] ^= 1
            target.write_bytes(bytes(data))
            verify_bundle(copy, hashes=False)
        case "delete":
            target.unlink()
        case "add":
            (copy / "runner" / "rag" / "extra.py").write_text("x = 1\n")
    word = {"edit": "changed since export", "delete": "missing", "add": "not in the manifest"}[change]
    with pytest.raises(BundleError, match=f"{word}: runner/rag/"):
        verify_bundle(copy)


def test_a_lora_merge_adds_scale_times_b_a_and_requantises(tiny_gguf, tmp_path) -> None:
    from gguf import GGMLQuantizationType, GGUFReader

    from edge.export.generator import export_generator
    from edge.export.gguf_merge import merge_lora
    from models.peft_lora import read_lora

    adapter = read_lora(_q_proj_lora(tmp_path / "adapter"))
    merged = tmp_path / "merged.gguf"
    assert merge_lora(tiny_gguf, adapter, merged) == 1
    base = {t.name: np.array(t.data) for t in GGUFReader(str(tiny_gguf)).tensors}
    after = {t.name: np.array(t.data) for t in GGUFReader(str(merged)).tensors}
    a, b = adapter.pairs["blk.0.attn_q.weight"]
    np.testing.assert_allclose(after["blk.0.attn_q.weight"], base["blk.0.attn_q.weight"] + 2.0 * b @ a, rtol=1e-6)
    assert all(np.array_equal(after[n], base[n]) for n in base if n != "blk.0.attn_q.weight")
    # requantising goes through llama.cpp's own quantiser: the wheel `make run` builds, not `make test`
    pytest.importorskip("llama_cpp", reason="the requantising half needs the llama.cpp wheel: make llama-cpp-wheel")
    info = export_generator(tiny_gguf, tmp_path / "q8.gguf", adapter, "q8_0", tmp_path / "work")
    types = {t.name: t.tensor_type for t in GGUFReader(str(tmp_path / "q8.gguf")).tensors}
    assert types["blk.0.attn_q.weight"] == GGMLQuantizationType.Q8_0
    assert info["adapter"]["tensors_merged"] == 1 and info["quant"] == "q8_0" and info["chat_template_chars"] > 0


def test_the_output_projection_takes_its_own_type(tiny_gguf, tmp_path) -> None:
    from gguf import GGMLQuantizationType, GGUFReader

    from edge.export.generator import export_generator

    pytest.importorskip("llama_cpp", reason="requantising needs the llama.cpp wheel: make llama-cpp-wheel")
    dest = tmp_path / "small.gguf"
    info = export_generator(tiny_gguf, dest, None, "q8_0", tmp_path / "work", output_quant="q4_0")
    types = {t.name: t.tensor_type for t in GGUFReader(str(dest)).tensors}
    assert types["output.weight"] == GGMLQuantizationType.Q4_0
    assert types["blk.0.attn_q.weight"] == GGMLQuantizationType.Q8_0 and info["output_quant"] == "q4_0"


def _tied_copy(tiny_gguf: Path, dest: Path) -> Path:
    """The tiny GGUF as a tied model's file looks: `output.weight` a second copy of the token table."""
    from gguf import GGUFReader

    from edge.export.gguf_rewrite import rewrite_gguf

    table = next(t for t in GGUFReader(str(tiny_gguf)).tensors if t.name == "token_embd.weight")
    rewrite_gguf(tiny_gguf, dest, replaced={"output.weight": np.array(table.data, dtype=np.float32)})
    return dest


def _last_logits(gguf: Path, text: str) -> np.ndarray:
    from llama_cpp import Llama

    model = Llama(str(gguf), n_ctx=64, n_threads=1, verbose=False)
    model.eval(model.tokenize(text.encode(), add_bos=False))
    logits = np.array(model.scores[model.n_tokens - 1])
    model.close()
    return logits


def test_a_tied_output_copy_is_left_out_and_projects_the_same(tiny_gguf, tmp_path) -> None:
    from gguf import GGUFReader

    from edge.export.generator import export_generator

    pytest.importorskip("llama_cpp", reason="the load check needs the llama.cpp wheel: make llama-cpp-wheel")
    tied = _tied_copy(tiny_gguf, tmp_path / "tied.gguf")
    dest = tmp_path / "untied-copy-dropped.gguf"
    info = export_generator(tied, dest, None, None, tmp_path / "work", output_quant="tied")
    names = {t.name for t in GGUFReader(str(dest)).tensors}
    assert "output.weight" not in names and "token_embd.weight" in names
    assert info["output_quant"] == "tied" and info["quant"] == "as shipped" and info["least_row_cosine"] == 1.0
    # the file shrinks by the tensor's bytes, give or take its header entry and alignment padding
    assert abs(tied.stat().st_size - info["dropped_bytes"] - dest.stat().st_size) < 4096
    assert not list((tmp_path / "work").iterdir())  # the intermediate file is gone
    # llama.cpp projects onto the token table: the same matrix, so the same logits
    np.testing.assert_allclose(_last_logits(dest, "故意杀人的，处"), _last_logits(tied, "故意杀人的，处"), atol=1e-4)


def test_tied_keeps_the_more_precise_copy_and_tied_table_the_token_table(tiny_gguf, tmp_path) -> None:
    from gguf import GGMLQuantizationType, GGUFReader

    from edge.export.generator import export_generator
    from edge.export.gguf_rewrite import rewrite_gguf

    pytest.importorskip("llama_cpp", reason="the load check needs the llama.cpp wheel: make llama-cpp-wheel")
    tied = _tied_copy(tiny_gguf, tmp_path / "both-f32.gguf")
    table = next(t for t in GGUFReader(str(tied)).tensors if t.name == "token_embd.weight")
    coarse = tmp_path / "table-f16.gguf"  # the shipped file's shape of things: the token table the coarser copy
    rewrite_gguf(tied, coarse, replaced={"token_embd.weight": np.array(table.data, dtype=np.float16)})
    prompt = "故意杀人的，处"
    for kind, kept, expected in (("tied", "output.weight", GGMLQuantizationType.F32),
                                 ("tied-table", "token_embd.weight", GGMLQuantizationType.F16)):
        dest = tmp_path / f"{kind}.gguf"
        info = export_generator(coarse, dest, None, None, tmp_path / f"work-{kind}", output_quant=kind)
        types = {t.name: t.tensor_type for t in GGUFReader(str(dest)).tensors}
        assert "output.weight" not in types and types["token_embd.weight"] == expected and info["kept"] == kept
    # the F32 output projection kept as the token table: exactly the all-F32 tied file's model
    np.testing.assert_allclose(_last_logits(tmp_path / "tied.gguf", prompt), _last_logits(tied, prompt), atol=1e-4)
    np.testing.assert_allclose(_last_logits(tmp_path / "tied-table.gguf", prompt), _last_logits(tied, prompt),
                               atol=0.05)


def test_an_untied_output_projection_is_kept_and_the_export_refused(tiny_gguf, tmp_path) -> None:
    from edge.export.generator import export_generator
    from edge.export.quantize import check_output_quant

    assert check_output_quant("TIED", requantising=False) == "tied"  # needs no --quant: nothing is requantised
    dest = tmp_path / "g.gguf"
    with pytest.raises(ExportError, match="untied"):  # the scripted model's output matrix is its own
        export_generator(tiny_gguf, dest, None, None, tmp_path / "work", output_quant="tied")
    assert not dest.exists()


def test_the_runner_imports_without_torch(edge_bundle) -> None:
    """Every copied module imports with torch, transformers and sentence-transformers made unimportable."""
    import subprocess
    import sys

    runner = edge_bundle[0] / "runner"
    modules = [p.relative_to(runner).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
               for p in runner.rglob("*.py") if p.name != "__main__.py"]
    blocked = ("torch", "transformers", "sentence_transformers")
    code = (f"import importlib, sys\nsys.modules.update(dict.fromkeys({blocked!r}))\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)")
    done = subprocess.run([sys.executable, "-c", code], cwd=runner, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(runner)})
    assert done.returncode == 0, done.stderr[-2000:]


def test_replace_keeps_config_round_trip(edge_bundle, edge_cfg) -> None:
    from edge.runtime import open_bundle

    cfg = open_bundle(edge_bundle[0], hashes=False).cfg
    assert replace(cfg, root=edge_cfg.root) == edge_cfg


def test_a_scalar_quantised_index_keeps_the_ranking(edge_bundle, edge_cfg, slice_retriever, tiny_gguf,
                                                    tmp_path) -> None:
    import faiss
    from edge_support import QUESTION

    from edge.runtime import Threads, edge_pipeline, open_bundle

    result = _export(edge_cfg, slice_retriever, tiny_gguf, tmp_path / "sq8", faiss_sq8=True)
    index = faiss.read_index(str(result.folder / "index" / "dense.faiss"))
    assert isinstance(faiss.downcast_index(index.index), faiss.IndexScalarQuantizer)
    assert result.manifest["index"]["faiss"] == "sq8"
    threads = Threads(decode=1, prefill=1, embed=1)
    flat, sq8 = (edge_pipeline(open_bundle(folder), threads, n_ctx=512) for folder in (edge_bundle[0], result.folder))
    assert [h.chunk.chunk_id for h in sq8.search(QUESTION)] == [h.chunk.chunk_id for h in flat.search(QUESTION)]


def test_the_bundle_index_drops_the_update_tokens_and_still_verifies(slice_retriever, tmp_path) -> None:
    import sqlite3

    from edge.export.index import export_index
    from retrieval.store import open_version_dir

    dest = tmp_path / "index"
    info = export_index(slice_retriever.index_location, dest)
    db = sqlite3.connect(dest / "docstore.sqlite")
    assert db.execute("SELECT COUNT(*) FROM chunks WHERE tokens != ''").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM chunks").fetchone() == (info["n_chunks"],)
    db.close()
    _, manifest = open_version_dir(dest)  # the copied manifest's checksums match the slimmer docstore
    assert manifest.stats["docstore_update_tokens"] is False and dest.stat().st_mode & 0o777 == 0o755
