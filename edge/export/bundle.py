"""`export_edge`: one domain -> an edge bundle folder and its .tar.gz, or an error and nothing at all.

Every input is checked before a byte is written (the adapter is read whole, the quant name, the index's own
checksums, the free space); the bundle is then built in a temp dir beside `out`, its manifest written and verified,
the archive made, and both are renamed into place. Any failure, a full disk included, removes what was made.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from core.stages import Stage
from domains.config import DomainConfig
from edge.errors import ExportError
from edge.export.embedder import GRAPHS, export_query_embedder
from edge.export.generator import chat_template, export_generator, resolve_adapter
from edge.export.index import export_index, source_version
from edge.export.modelfile import modelfile_text
from edge.export.quantize import check_output_quant, check_quant
from edge.export.runner import PROJECT, copy_runner
from edge.layout import (
    DOMAIN_CONFIG,
    DOMAIN_DIR,
    EMBEDDER_DIR,
    GENERATOR,
    INDEX_DIR,
    MODELFILE,
    README,
    REQUIREMENTS,
    RUNNER_DIR,
)
from edge.manifest import verify_bundle, write_manifest
from models.registry import gguf_file, resolve_model
from retrieval.docstore import SqliteDocstore
from retrieval.index_files import DOCSTORE_FILE
from retrieval.store import is_disk_full

log = logging.getLogger(__name__)

VERSIONED = ("dossier", "llama-cpp-python", "onnxruntime", "faiss-cpu", "numpy", "tokenizers", "bm25s", "jieba",
             "gguf", "torch", "sentence-transformers")
EMBEDDER_VOCABS = ("domain", "full")
ARCHIVE_LEVEL = 1  # GGUF and int8 graphs barely compress: level 1 is as small as 9 within 1 % and far faster


@dataclass(frozen=True, slots=True)
class ExportRequest:
    cfg: DomainConfig
    out: Path
    adapter: str = "served"  # served (what the domain answers with) | shipped | none | a LoRA adapter dir
    quant: str | None = None  # None: the GGUF's own type (no requantisation unless an adapter is merged)
    output_quant: str | None = None  # the output projection's type (edge.export.quantize.OUTPUT_TYPES)
    faiss_sq8: bool = False
    embedder_int8: str = "matmul"  # edge.export.embedder.GRAPHS: "all" quantises the token table too
    embedder_vocab: str = "domain"  # EMBEDDER_VOCABS: "domain" trims the token table (edge.export.vocab_trim)
    index_dir: Path | None = None  # default: the domain's index root
    gguf: Path | None = None  # default: the domain's [models] generator_gguf
    threads: int = 1
    force: bool = False  # replace an existing bundle at `out`


@dataclass(frozen=True, slots=True)
class ExportResult:
    folder: Path
    archive: Path
    manifest: dict[str, Any]
    seconds: float


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _needed_bytes(gguf: Path, index: Path, embedder: str, merging: bool) -> int:
    """About what the export writes at its peak: the folder and the archive (x2), a merge's F32 copy (x3 GGUF)."""
    model = Path(resolve_model(embedder))
    weights = sum(p.stat().st_size for p in model.glob("*.safetensors")) if model.is_dir() else 0
    index_bytes = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
    return 2 * (gguf.stat().st_size + index_bytes + weights) + (3 * gguf.stat().st_size if merging else 0)


def _check_room(where: Path, needed: int) -> None:
    free = shutil.disk_usage(where).free
    if free < needed:
        raise ExportError(f"not enough disk at {where}: the export needs about {needed / 2**30:.1f} GiB and "
                          f"{free / 2**30:.1f} GiB is free; free space there or choose --out on a larger disk")


def export_edge(req: ExportRequest) -> ExportResult:
    start = time.perf_counter()
    cfg, out = _edge_config(req.cfg), req.out.resolve()
    quant = None if req.quant is None else check_quant(req.quant)
    adapter = resolve_adapter(cfg, req.adapter)
    if req.output_quant is not None:
        check_output_quant(req.output_quant, requantising=quant is not None or adapter is not None)
    if req.embedder_int8 not in GRAPHS:
        raise ExportError(f"--embedder-int8 {req.embedder_int8!r}: choose one of {', '.join(GRAPHS)}")
    if req.embedder_vocab not in EMBEDDER_VOCABS:
        raise ExportError(f"--embedder-vocab {req.embedder_vocab!r}: choose one of {', '.join(EMBEDDER_VOCABS)}")
    gguf = req.gguf or Path(gguf_file(cfg.models.generator_gguf))
    index, _ = source_version(req.index_dir or _default_index(cfg))
    if out.exists() and not req.force:
        raise ExportError(f"{out} exists; choose another --out or pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_room(out.parent, _needed_bytes(gguf, index, cfg.models.embedder, adapter is not None))
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-edge-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the bundle is for whoever copies it
    archive_tmp = tmp.with_suffix(".tar.gz")
    try:
        manifest = _fill(tmp, req, cfg, gguf, index, adapter, quant)
        _archive(tmp, archive_tmp, out.name)
        _place(tmp, out, archive_tmp)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        archive_tmp.unlink(missing_ok=True)
        if is_disk_full(err, out.parent):
            raise ExportError(f"the disk holding {out.parent} filled up during the export; nothing was kept. Free "
                              "space there or choose --out on a larger disk") from err
        raise
    seconds = time.perf_counter() - start
    log.info("edge bundle %s (+ .tar.gz) written in %.1f s", out, seconds)
    return ExportResult(out, _archive_path(out), manifest, seconds)


def _default_index(cfg: DomainConfig) -> Path:
    from core.paths import index_root

    return index_root(cfg.name)


def _edge_config(cfg: DomainConfig) -> DomainConfig:
    """The config the bundle serves: the edge has no cross-encoder (it needs torch), so a rerank stage is dropped."""
    if Stage.RERANK not in cfg.retrieval.stages:
        return cfg
    log.warning("%s: the edge bundle has no reranker (torch); its retrieval stops after fusion", cfg.name)
    stages = tuple(s for s in cfg.retrieval.stages if s != Stage.RERANK)
    return replace(cfg, retrieval=replace(cfg.retrieval, stages=stages), models=replace(cfg.models, reranker=""))


def _fill(tmp: Path, req: ExportRequest, cfg: DomainConfig, gguf: Path, index: Path, adapter: Any,
          quant: str | None) -> dict[str, Any]:
    generator = export_generator(gguf, tmp / GENERATOR, adapter, quant, tmp / ".work", req.threads,
                                 req.output_quant)
    shutil.rmtree(tmp / ".work", ignore_errors=True)
    texts = _chunk_texts(index) if req.embedder_vocab == "domain" else None
    embedder = export_query_embedder(cfg, tmp / EMBEDDER_DIR, req.threads, req.embedder_int8, texts)
    index_info = export_index(index, tmp / INDEX_DIR, req.faiss_sq8)
    _write_domain(cfg, tmp / DOMAIN_DIR)
    runner = copy_runner(tmp / RUNNER_DIR)
    shutil.copyfile(PROJECT / "edge" / REQUIREMENTS, tmp / REQUIREMENTS)
    (tmp / MODELFILE).write_text(modelfile_text(cfg, GENERATOR, chat_template(tmp / GENERATOR)), encoding="utf-8")
    (tmp / README).write_text(_readme(cfg), encoding="utf-8")
    info = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "domain": cfg.name, "display_name": cfg.display_name,
            "versions": versions(), "generator": generator, "embedder": embedder, "index": index_info,
            "abstention": asdict(cfg.abstention), "runner_modules": len(runner)}
    write_manifest(tmp, info)
    return verify_bundle(tmp)


def _chunk_texts(index: Path) -> list[str]:
    """The index's chunk texts and titles: the domain's vocabulary, which the bundle's embedder keeps."""
    store = SqliteDocstore(index / DOCSTORE_FILE)
    try:
        chunks = [row.chunk for row in store.rows()]
    finally:
        store.close()
    return [c.text for c in chunks] + sorted({c.title for c in chunks if c.title})


def _write_domain(cfg: DomainConfig, dest: Path) -> None:
    """domain.json (the whole DomainConfig but its folder), and the jieba user dictionary, question bank, domain
    gate and scope router it names."""
    dest.mkdir(parents=True)
    data = asdict(cfg)
    data.pop("root")
    # files the retriever reads, beside domain.json
    for key in ("user_dict", "question_bank", "domain_gate", "scope_router"):
        name = data["retrieval"][key]
        if name and cfg.path(name).is_file():
            inside = Path(name) if not Path(name).is_absolute() else Path("models") / Path(name).name
            (dest / inside).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cfg.path(name), dest / inside)
            data["retrieval"][key] = inside.as_posix()
    (dest / DOMAIN_CONFIG).write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str), encoding="utf-8")


def _readme(cfg: DomainConfig) -> str:
    run = "PYTHONPATH=runner .venv/bin/python -m edge"
    return (f"# Dossier edge bundle: {cfg.display_name}\n\nOffline: no torch, no network. From this folder:\n\n"
            "    python -m venv .venv && .venv/bin/pip install -r requirements.txt  # llama-cpp-python: see the file\n"
            f"    {run} ask . \"your question\"\n"
            f"    {run} serve . --port 8000  # /v1/ask, /v1/chat/completions (OpenAI-compatible)\n"
            f"    {run} verify .  # every file against manifest.json\n\n"
            f"Ollama (the generator alone, without retrieval or citations): ollama create dossier-{cfg.name} -f "
            "Modelfile\n")


def _archive_path(out: Path) -> Path:
    return out.with_name(out.name + ".tar.gz")


def _archive(folder: Path, archive: Path, name: str) -> None:
    with tarfile.open(archive, "w:gz", compresslevel=ARCHIVE_LEVEL) as tar:
        tar.add(folder, arcname=name)


def _place(tmp: Path, out: Path, archive_tmp: Path) -> None:
    """Rename the finished folder and archive into place; an older bundle at `out` goes only once both are ready."""
    trash = None
    if out.exists():
        trash = Path(tempfile.mkdtemp(prefix=".trash-edge-", dir=out.parent))
        os.rename(out, trash / out.name)
    os.rename(tmp, out)
    os.replace(archive_tmp, _archive_path(out))
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
