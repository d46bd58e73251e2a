"""`dossier train embedder --domain D`: tune the domain's embedder on the TRAIN split of its retrieval eval set.

The recipe (training/configs/embedder_<domain>.toml) names the eval set, the base model and the output name. The
method is a query-side adapter on the frozen embedder (training/retriever/query_adapter.py: why, and the loss):

1. embed the train and dev queries and the candidate documents once with the base model (cached by content);
2. fit the adapter on train, choosing the epoch by dev recall@k;
3. keep it only if dev recall@k beats the base model by `min_gain`; then install it as `<cache>/models/<output>`
   (COMPLETE_MARKER) so a domain.toml can name it, and write report.json into the run dir.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from domains import load_domain
from domains.config import DomainConfig
from domains.config_parse import parse_section
from eval.evalsets import read_jsonl
from models.query_adapter import write_adapter_file
from models.registry import resolve_model
from training.retriever.query_adapter import (
    AdapterArgs,
    apply_adapter,
    fit_adapter,
    positives_matrix,
    recall_at,
)
from training.retriever.retrieval_data import Example, candidates, examples, index_candidates

log = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parents[1] / "configs"  # training/configs


@dataclass(frozen=True, slots=True)
class EmbedderRecipe:
    domain: str
    evalset: str
    base: str = "embeddinggemma-300m"  # registry name or local path
    output: str = ""  # model name in the cache; default "<base>-<domain>-qa"
    charge_map: bool = False  # CAIL: add charge-only records labelled via the train split's charge map
    max_train: int = 0  # 0: every train example
    max_dev: int = 0
    k: int = 5  # dev recall@k decides the epoch and whether to keep the model
    min_gain: float = 0.01  # keep only if dev recall@k improves by at least this much
    # more (question, answer) training pairs from a chat JSONL of the domain (path relative to its folder; first user
    # turn -> first assistant turn): their answers join the candidates as extra negatives; dev and test never see them
    extra_pairs: str = ""
    max_extra: int = 0  # 0: every pair
    adapter: AdapterArgs = field(default_factory=AdapterArgs)

    @property
    def output_name(self) -> str:
        return self.output or f"{Path(self.base).name}-{self.domain}-qa"


def load_recipe(path: Path) -> EmbedderRecipe:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the recipe: {err}") from err
    return parse_section(EmbedderRecipe, data, where=str(path))


def recipe_for(domain: str, path: Path | None = None) -> EmbedderRecipe:
    path = path or CONFIGS / f"embedder_{domain}.toml"
    if not path.is_file():
        raise ConfigError(f"no embedder recipe for domain {domain!r}: {path} not found")
    return load_recipe(path)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def encode_cached(cfg: DomainConfig, base: str, texts: list[str], role: str, cache: Path) -> np.ndarray:
    """(n, dim) base-model embeddings. A per-text store under `cache` (one per model, settings and role) keeps
    every vector computed so far, so re-runs and other splits only embed texts not seen before."""
    emb = cfg.embedding
    settings = json.dumps([base, emb.precision, emb.max_seq_length, role]).encode()
    store = cache / hashlib.sha256(settings).hexdigest()[:16]
    keys_file, vectors_file = store.with_suffix(".keys.json"), store.with_suffix(".npy")
    keys: list[str] = json.loads(keys_file.read_text()) if keys_file.is_file() else []
    vectors = np.load(vectors_file) if vectors_file.is_file() else None
    position = {key: i for i, key in enumerate(keys)}
    missing = list(dict.fromkeys(t for t in texts if text_key(t) not in position))
    if missing:
        from retrieval.embedders import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder(base, replace(emb, dim=0)).load()
        fresh = embedder.embed(missing, role="query" if role == "query" else "document")
        vectors = fresh if vectors is None else np.concatenate([vectors, fresh])
        keys += [text_key(t) for t in missing]
        cache.mkdir(parents=True, exist_ok=True)
        np.save(vectors_file, vectors)
        keys_file.write_text(json.dumps(keys))
        position = {key: i for i, key in enumerate(keys)}
    assert vectors is not None
    return vectors[[position[text_key(t)] for t in texts]]


def load_extra_pairs(cfg: DomainConfig, recipe: EmbedderRecipe) -> list[tuple[str, str]]:
    """(question, answer) from the recipe's chat JSONL(.gz); records without both turns are skipped and counted."""
    if not recipe.extra_pairs:
        return []
    path = cfg.path(recipe.extra_pairs)
    if not path.is_file():
        raise ConfigError(f"embedder recipe: extra_pairs file {path} not found")
    pairs, skipped = [], 0
    for record in read_jsonl(path):
        turns = record.get("messages") or []
        user = next((t["content"] for t in turns if t.get("role") == "user"), "").strip()
        reply = next((t["content"] for t in turns if t.get("role") == "assistant"), "").strip()
        if user and reply:
            pairs.append((user, reply))
        else:
            skipped += 1
    if skipped:
        log.info("extra pairs %s: %d records without a user and an assistant turn skipped", path.name, skipped)
    return pairs[: recipe.max_extra] if recipe.max_extra else pairs


def _gold_rows(items: list[Example], doc_ids: tuple[str, ...]) -> list[list[int]]:
    """Per example, the candidate rows that belong to a gold document (several chunks of one document all do)."""
    rows: dict[str, list[int]] = {}
    for row, doc_id in enumerate(doc_ids):
        rows.setdefault(doc_id, []).append(row)
    return [[r for g in ex.gold_ids for r in rows.get(g, [])] for ex in items]


def candidate_vectors(cfg: DomainConfig, recipe: EmbedderRecipe, gold: set[str], cache: Path,
                      index_dir: Path | None) -> tuple[tuple[str, ...], np.ndarray]:
    """(doc id per row, (rows, dim) vectors): an index's own chunk vectors, or the gold pool embedded here."""
    if index_dir is not None:
        indexed = index_candidates(index_dir)
        return indexed.doc_ids, indexed.vectors
    docs = candidates(cfg, recipe.evalset, gold)
    return docs.doc_ids, encode_cached(cfg, recipe.base, list(docs.texts), "document", cache)


def train_embedder(recipe: EmbedderRecipe, run_dir: Path, cache: Path, install: bool = True,
                   index_dir: Path | None = None) -> dict[str, Any]:
    """Run the recipe; returns the report (also written to run_dir/report.json). `index_dir`: train against the
    chunk vectors of an index built with the base model (e.g. `dossier eval index`) instead of embedding here."""
    cfg = load_domain(recipe.domain)
    train = examples(cfg, recipe.evalset, "train", charge_map=recipe.charge_map, limit=recipe.max_train)
    dev = examples(cfg, recipe.evalset, "dev", limit=recipe.max_dev)
    started = time.perf_counter()
    gold = {g for ex in train + dev for g in ex.gold_ids}
    doc_ids, doc_vecs = candidate_vectors(cfg, recipe, gold, cache, index_dir)
    train_gold, dev_gold = _gold_rows(train, doc_ids), _gold_rows(dev, doc_ids)
    train, train_gold = [ex for ex, g in zip(train, train_gold, strict=True) if g], [g for g in train_gold if g]
    dev, dev_gold = [ex for ex, g in zip(dev, dev_gold, strict=True) if g], [g for g in dev_gold if g]
    q_train = encode_cached(cfg, recipe.base, [ex.query for ex in train], "query", cache)
    q_dev = encode_cached(cfg, recipe.base, [ex.query for ex in dev], "query", cache)
    extra = load_extra_pairs(cfg, recipe)
    train_docs, train_queries, extra_gold = doc_vecs, q_train, []
    if extra:  # their answers are candidates only while fitting; dev is ranked over the eval pool alone
        extra_q = encode_cached(cfg, recipe.base, [q for q, _ in extra], "query", cache)
        extra_d = encode_cached(cfg, recipe.base, [a for _, a in extra], "document", cache)
        train_queries, train_docs = np.concatenate([q_train, extra_q]), np.concatenate([doc_vecs, extra_d])
        extra_gold = [[len(doc_ids) + i] for i in range(len(extra))]
    encode_s = time.perf_counter() - started
    pos_train, pos_dev = positives_matrix(train_gold, len(doc_ids)), positives_matrix(dev_gold, len(doc_ids))
    started = time.perf_counter()
    pos_fit = positives_matrix(train_gold + extra_gold, len(train_docs))
    adapter, history = fit_adapter(train_queries, train_docs, pos_fit, recipe.adapter, dev=(q_dev, pos_dev),
                                   k=recipe.k, dev_docs=doc_vecs)
    base_dev = recall_at(q_dev, doc_vecs, pos_dev, recipe.k)
    tuned_dev = recall_at(apply_adapter(q_dev, adapter), doc_vecs, pos_dev, recipe.k)
    report: dict[str, Any] = {
        "recipe": asdict(recipe), "output": recipe.output_name, "n_train": len(train), "n_extra": len(extra),
        "n_dev": len(dev),
        "n_candidates": len(doc_ids), "index_dir": str(index_dir or ""),
        f"dev_recall@{recipe.k}": {"base": base_dev, "tuned": tuned_dev},
        "train_recall@5": {"base": recall_at(q_train, doc_vecs, pos_train, 5),
                           "tuned": recall_at(apply_adapter(q_train, adapter), doc_vecs, pos_train, 5)},
        "kept": tuned_dev >= base_dev + recipe.min_gain, "encode_s": round(encode_s, 1),
        "fit_s": round(time.perf_counter() - started, 1), "history": history,
    }
    if report["kept"] and install:
        report["model_dir"] = str(_install(recipe, adapter, report))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    np.save(run_dir / "adapter.npy", adapter)
    write_adapter_file(adapter, run_dir / "query_adapter.npz")  # the form a domain ships (models/registry.py)
    return report


def _install(recipe: EmbedderRecipe, adapter: np.ndarray, report: dict[str, Any]) -> Path:
    from models.query_adapter import save_adapted_model
    from models.trained_models import install_trained_model

    base_dir = resolve_model(recipe.base)
    marker = {"base": recipe.base, "method": "query-adapter", "evalset": recipe.evalset,
              f"dev_recall@{recipe.k}": report[f"dev_recall@{recipe.k}"]}
    return install_trained_model(recipe.output_name, lambda tmp: save_adapted_model(base_dir, adapter, tmp), marker)
