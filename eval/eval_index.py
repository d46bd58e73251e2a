"""An evaluation index: only the corpus files that hold an eval set's gold documents.

The retrieval targets (and the character-bigram BM25 baselines in the data README) are measured against the
gold document pool of each set: the 505 Criminal Law articles for CAIL2018, the 5,997 Huatuo answers, the 1,594
FinCUGE passages. Indexing the whole domain corpus (26k statutes for legal) costs an hour of CPU per embedder on
this machine and, with the set's `corpus_filter`, ranks the same pool anyway (BM25 statistics differ slightly).
So `dossier eval index` ingests and indexes just those files into `<out>/<domain>/<evalset>/<embedder>/`, and
`dossier eval retrieval --index-dir` points at it.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

from core.errors import ConfigError
from domains.config import DomainConfig
from eval.evalsets import load_evalset, read_jsonl

log = logging.getLogger(__name__)


def gold_pool_config(cfg: DomainConfig, evalset: str) -> DomainConfig:
    """`cfg` with only the corpus sources needed to cover the eval set's gold ids: in declaration order, a source
    is kept when it holds gold ids that no earlier kept source holds (statutes_all repeats the Criminal Law)."""
    missing = {g for r in load_evalset(cfg, evalset).records for g in r.gold_ids}
    sources = []
    for source in cfg.corpus:
        held = missing & {str(row.get(source.id_field)) for row in read_jsonl(cfg.path(source.path))}
        if held:
            sources.append(source)
            missing -= held
    if not sources:
        raise ConfigError(f"eval set {evalset!r}: no corpus file of domain {cfg.name} holds its gold ids")
    if missing:
        log.warning("eval set %s: %d gold ids are in no corpus file", evalset, len(missing))
    return replace(cfg, corpus=tuple(sources))


def expanded_pool_config(cfg: DomainConfig, evalset: str, field: str, workdir: Path) -> DomainConfig:
    """`cfg` with one corpus file, written to `workdir/pool.jsonl`: every document (of every declared source; the
    first source wins a doc id) whose `field` value a gold document shares. With `law_id`, a consultation set's
    pool is every article of every law that one of its answers cites: the competitors a user's question really
    meets, without embedding all 26k statutes."""
    gold = {g for r in load_evalset(cfg, evalset).records for g in r.gold_ids}
    rows: dict[str, dict] = {}
    for source in cfg.corpus:
        for row in read_jsonl(cfg.path(source.path)):
            rows.setdefault(str(row.get(source.id_field)), row)
    wanted = {rows[g].get(field) for g in gold if g in rows} - {None}
    if not wanted:
        raise ConfigError(f"eval set {evalset!r}: no gold document of domain {cfg.name} has a {field!r} field")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "pool.jsonl"
    kept = [row for row in rows.values() if row.get(field) in wanted]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
    log.info("eval pool %s: %d documents sharing %s with the gold (%d values)", path, len(kept), field, len(wanted))
    if cfg.retrieval.user_dict and cfg.path(cfg.retrieval.user_dict).is_file():  # the same BM25 words as the domain
        shutil.copyfile(cfg.path(cfg.retrieval.user_dict), workdir / cfg.retrieval.user_dict)
    # ingest reads declared sources under the domain root: the pool's root is its own folder
    return replace(cfg, root=workdir, corpus=(replace(cfg.corpus[0], path=path.name),))


def eval_index_dir(out: Path, cfg: DomainConfig, evalset: str, expand_by: str = "") -> Path:
    pool = f"{evalset}+{expand_by}" if expand_by else evalset
    return out / cfg.name / pool / Path(cfg.models.embedder).name


def build_eval_index(cfg: DomainConfig, evalset: str, out: Path, expand_by: str = "") -> Path:
    """Ingest + index the gold pool of `evalset` (with `expand_by`, the documents sharing that field with a gold
    one) under `out`; returns the index root for --index-dir."""
    from ingest.pipeline import run_ingest
    from ingest.store import ChunkStore
    from rag.build_retrieval import build_index_builder

    root = eval_index_dir(out, cfg, evalset, expand_by)
    if expand_by:
        pool = expanded_pool_config(cfg, evalset, expand_by, root)
    else:
        pool = gold_pool_config(cfg, evalset)
    workspace = root / "ingest"
    log.info("eval index %s: sources %s", root, [s.path for s in pool.corpus])
    run_ingest(pool, workspace=workspace)
    # an expanded pool's root is its own folder: the domain's vector pack still holds its chunks (the same texts)
    builder = build_index_builder(pool, root=root / "index", pack_root=cfg.root)
    with ChunkStore(workspace / "chunks.sqlite") as store:
        builder.update(store)
    return root / "index"


def adapter_index(base_index: Path, tuned: str, out: Path) -> Path:
    """A copy of a base-model index version relabelled for a query-adapter embedder trained on that base
    (training/retriever/query_adapter.py): such a model's document vectors ARE the base model's, so nothing is
    re-embedded. Refuses any other kind of model. Returns the version dir (usable as --index-dir)."""
    from dataclasses import replace as replace_record

    from models.registry import query_adapter_base
    from retrieval.manifest import MANIFEST
    from retrieval.store import CURRENT, IndexStore, open_version_dir

    if (base_index / CURRENT).is_file():
        directory, manifest = IndexStore(base_index).open(None)
    else:
        directory, manifest = open_version_dir(base_index)
    if query_adapter_base(tuned) != manifest.embedder.name:
        raise ConfigError(f"{tuned} is not a query adapter of {manifest.embedder.name}: build its index instead")
    target = out / directory.name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(directory, target)
    relabelled = replace_record(manifest, embedder=replace_record(manifest.embedder, name=tuned))
    (target / MANIFEST).write_text(relabelled.to_json(), encoding="utf-8")
    return target
