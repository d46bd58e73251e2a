"""`dossier train reranker --domain D`: a cross-encoder reranker fitted on (query, gold, hard negatives) pairs of
the TRAIN split, kept only if it beats no-rerank on the DEV split.

Recipe: training/configs/reranker_<domain>.toml. Hard negatives are the best-ranked non-gold documents of the base
embedder (dense) and of BM25 over the same candidates; training uses sentence-transformers' CrossEncoderTrainer
with BinaryCrossEntropyLoss (1 positive : `negatives` negatives per query). The dev check reranks the dense top
`rerank_top_n` of `max_dev` dev queries and compares recall@k with the dense order.
"""

from __future__ import annotations

import json
import logging
import time
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from core.hardware import Precision, precision_choice
from domains import load_domain
from domains.config_parse import parse_section
from models.registry import resolve_model
from training.retriever.retrieval_data import Candidates, Example, candidates, examples

log = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parents[1] / "configs"  # training/configs


@dataclass(frozen=True, slots=True)
class RerankerRecipe:
    domain: str
    evalset: str
    base: str = "embeddinggemma-300m"  # the backbone (its transformer gets a fresh 1-logit score head)
    output: str = ""  # model name in the cache; default "reranker-<domain>"
    charge_map: bool = False
    negatives: int = 3  # hard negatives per query
    max_train: int = 0
    max_dev: int = 60
    max_length: int = 256  # tokens per (query, passage) pair
    query_chars: int = 256  # long queries (CAIL facts) are cut to this many characters
    batch_size: int = 4
    max_steps: int = 60
    learning_rate: float = 2e-5
    precision: Precision = "auto"  # auto: bf16 on a CPU with native bf16, else fp32 (core.hardware); trains on the CPU
    threads: int = 1
    seed: int = 0
    rerank_top_n: int = 20
    k: int = 5
    min_gain: float = 0.01

    @property
    def output_name(self) -> str:
        return self.output or f"reranker-{self.domain}"


def recipe_for(domain: str, path: Path | None = None) -> RerankerRecipe:
    path = path or CONFIGS / f"reranker_{domain}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"no usable reranker recipe for domain {domain!r} at {path}: {err}") from err
    return parse_section(RerankerRecipe, data, where=str(path))


def hard_negatives(scores: np.ndarray, gold: Sequence[Sequence[int]], n: int) -> list[list[int]]:
    """Per query, the `n` best-scored documents that are not gold. scores: (q, m)."""
    out = []
    for row, positives in zip(scores, gold, strict=True):
        ranked = np.argsort(-row)
        out.append([int(d) for d in ranked[: n + len(positives)] if d not in set(positives)][:n])
    return out


def bm25_scores(queries: Sequence[str], docs: Sequence[str], user_dict: Path | None) -> np.ndarray:
    """(q, m) BM25 scores of the candidates, with the retrieval stage's own tokenizer and scorer."""
    from retrieval.bm25 import Bm25Retriever
    from retrieval.zh_tokenizer import JiebaTokenizer

    tokenizer = JiebaTokenizer(user_dict)
    tokenizer.load()
    bm25 = Bm25Retriever(tokenizer)
    bm25.index([tokenizer.tokenize(d) for d in docs])
    scores, positions = bm25.search(list(queries), min(len(docs), 50), None)
    out = np.full((len(queries), len(docs)), -np.inf, dtype=np.float32)
    for row, (s, p) in enumerate(zip(scores, positions, strict=True)):
        keep = p >= 0
        out[row, p[keep]] = s[keep]
    return out


def pair_rows(items: Sequence[Example], docs: Candidates, gold: Sequence[Sequence[int]],
              negatives: Sequence[Sequence[int]], query_chars: int) -> dict[str, list[Any]]:
    """Columns query / passage / label: each gold document 1.0, each negative 0.0."""
    rows: dict[str, list[Any]] = {"query": [], "passage": [], "label": []}
    for ex, pos, neg in zip(items, gold, negatives, strict=True):
        for doc, label in [*((d, 1.0) for d in pos), *((d, 0.0) for d in neg)]:
            rows["query"].append(ex.query[:query_chars])
            rows["passage"].append(docs.texts[doc])
            rows["label"].append(label)
    return rows


def load_cross_encoder(model_dir: str, max_length: int, precision: str) -> Any:
    """A CrossEncoder with one output logit. A chat template is removed, from the tokenizer and from the modules'
    modality config (ST 6.2 otherwise renders (query, passage) pairs as chat messages and raises); the saved
    reranker then has none either, so retrieval's CrossEncoderReranker loads it as a plain pair classifier."""
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(model_dir, num_labels=1, max_length=max_length, device="cpu", local_files_only=True)
    tokenizer = model.tokenizer
    if getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = None
    for module in model:
        modality_config = getattr(module, "modality_config", None)
        if isinstance(modality_config, dict):
            modality_config.pop("message", None)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    model.model.config.pad_token_id = tokenizer.pad_token_id
    if cpu_precision(precision) == "bf16":
        model.model.to(torch.bfloat16)
    return model


def cpu_precision(precision: str) -> str:
    """The recipe trains on the CPU (`use_cpu`): "auto" is bf16 only where this CPU computes in bf16 natively."""
    choice = precision_choice(precision, "cpu")
    log.info("reranker training precision %s (%s)", choice.value, choice.reason)
    return choice.value


def train_cross_encoder(model: Any, rows: dict[str, list[Any]], recipe: RerankerRecipe, out_dir: Path) -> list[dict]:
    """Fit `model` in place on the pair rows for `recipe.max_steps` steps; returns the trainer's log history."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    torch.set_num_threads(recipe.threads)
    args = CrossEncoderTrainingArguments(
        output_dir=str(out_dir), max_steps=recipe.max_steps, per_device_train_batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate, seed=recipe.seed, logging_steps=1, save_strategy="no",
        report_to=[], bf16=cpu_precision(recipe.precision) == "bf16", use_cpu=True, dataloader_num_workers=0,
        disable_tqdm=False,
    )
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=Dataset.from_dict(rows),
                                  loss=BinaryCrossEntropyLoss(model))
    trainer.train()
    return [entry for entry in trainer.state.log_history if "loss" in entry]


def rerank_recall(model: Any, items: Sequence[Example], docs: Candidates, gold: Sequence[Sequence[int]],
                  first_stage: np.ndarray, recipe: RerankerRecipe) -> tuple[float, float]:
    """(recall@k of the first-stage order, recall@k after reranking its top `rerank_top_n`)."""
    before, after = [], []
    for ex, pos, row in zip(items, gold, first_stage, strict=True):
        top = [int(d) for d in np.argsort(-row)[: recipe.rerank_top_n]]
        scores = model.predict([(ex.query[: recipe.query_chars], docs.texts[d]) for d in top],
                               batch_size=8, show_progress_bar=False)
        reranked = [d for _, d in sorted(zip(-np.asarray(scores, dtype=np.float32), top, strict=True))]
        before.append(len(set(pos) & set(top[: recipe.k])) / len(pos))
        after.append(len(set(pos) & set(reranked[: recipe.k])) / len(pos))
    return float(np.mean(before)), float(np.mean(after))


def train_reranker(recipe: RerankerRecipe, run_dir: Path, cache: Path, install: bool = True) -> dict[str, Any]:
    """Mine negatives, train, measure on dev, install if it helps; report.json goes into run_dir."""
    from training.retriever.embedder import encode_cached

    cfg = load_domain(recipe.domain)
    train = examples(cfg, recipe.evalset, "train", charge_map=recipe.charge_map, limit=recipe.max_train)
    dev = examples(cfg, recipe.evalset, "dev", limit=recipe.max_dev)
    docs = candidates(cfg, recipe.evalset, {g for ex in train + dev for g in ex.gold_ids})
    index = {d: i for i, d in enumerate(docs.doc_ids)}
    train_gold = [[index[g] for g in ex.gold_ids if g in index] for ex in train]
    dev_gold = [[index[g] for g in ex.gold_ids if g in index] for ex in dev]
    doc_vecs = encode_cached(cfg, recipe.base, list(docs.texts), "document", cache)
    dense_train = encode_cached(cfg, recipe.base, [ex.query for ex in train], "query", cache) @ doc_vecs.T
    user_dict = cfg.path(cfg.retrieval.user_dict) if cfg.retrieval.user_dict else None
    sparse_train = bm25_scores([ex.query for ex in train], docs.texts, user_dict)
    half = max(1, recipe.negatives // 2)
    negatives = [list(dict.fromkeys(a + b))[: recipe.negatives] for a, b in zip(
        hard_negatives(dense_train, train_gold, recipe.negatives - half),
        hard_negatives(sparse_train, train_gold, half), strict=True)]
    rows = pair_rows(train, docs, train_gold, negatives, recipe.query_chars)
    # fp32 master weights; with precision "bf16" the trainer runs the forward / backward under bf16 autocast
    model = load_cross_encoder(resolve_model(recipe.base), recipe.max_length, "fp32")
    started = time.perf_counter()
    history = train_cross_encoder(model, rows, recipe, run_dir / "trainer")
    train_s = time.perf_counter() - started
    dense_dev = encode_cached(cfg, recipe.base, [ex.query for ex in dev], "query", cache) @ doc_vecs.T
    before, after = rerank_recall(model, dev, docs, dev_gold, dense_dev, recipe)
    report: dict[str, Any] = {
        "recipe": asdict(recipe), "output": recipe.output_name, "n_pairs": len(rows["label"]),
        "n_dev": len(dev), f"dev_recall@{recipe.k}": {"dense": before, "dense+rerank": after},
        "kept": after >= before + recipe.min_gain, "train_s": round(train_s, 1), "history": history,
    }
    if report["kept"] and install:
        from models.trained_models import install_trained_model

        marker = {"base": recipe.base, "method": "cross-encoder", "evalset": recipe.evalset,
                  f"dev_recall@{recipe.k}": report[f"dev_recall@{recipe.k}"]}
        report["model_dir"] = str(install_trained_model(recipe.output_name, lambda tmp: model.save(str(tmp)), marker))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return report
