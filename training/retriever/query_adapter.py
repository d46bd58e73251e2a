"""Fit a query-side linear adapter on a frozen embedder, and save the tuned embedder as a sentence-transformers dir.

Why this form of embedder tuning: on this CPU a full fine-tune of EmbeddingGemma costs minutes per step and would
force re-embedding the corpus. The embedder's last layers are linear (Dense 768->3072->768, identity
activations) followed by L2 normalisation, so a linear map A on the normalised query embedding equals a tuned
query head: normalize(A @ normalize(W p)) == normalize(A @ W p). Documents keep the base model's vectors exactly
(an index built with the base model holds the same document vectors), and training runs on cached embeddings:
seconds per epoch.

Loss: softmax cross-entropy of each (query, gold document) pair against ALL candidate documents (in-batch and
hard negatives at once, as MultipleNegativesRankingLoss with scale `scale`; other gold documents of the same query
are masked out), plus `identity_weight * ||A - I||^2` so A stays near the base model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AdapterArgs:
    epochs: int = 40
    batch_size: int = 64  # (query, gold) pairs per step
    lr: float = 1e-3
    scale: float = 20.0  # 1 / temperature, as sentence-transformers' MultipleNegativesRankingLoss
    identity_weight: float = 1e-2
    seed: int = 0


def positives_matrix(gold: Sequence[Sequence[int]], n_docs: int) -> np.ndarray:
    """(n_queries, n_docs) bool: True where the document is gold for the query."""
    out = np.zeros((len(gold), n_docs), dtype=bool)
    for row, ids in enumerate(gold):
        out[row, list(ids)] = True
    return out


def apply_adapter(queries: np.ndarray, adapter: np.ndarray) -> np.ndarray:
    """(n, d) unit rows -> (n, d) unit rows of queries @ A.T."""
    out = queries @ adapter.T
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def recall_at(queries: np.ndarray, docs: np.ndarray, positives: np.ndarray, k: int) -> float:
    """Mean recall@k of a dense ranking of all documents (fraction of each query's gold in its top k)."""
    scores = queries @ docs.T  # (n, m)
    top = np.argpartition(-scores, kth=min(k, scores.shape[1] - 1), axis=1)[:, :k]
    found = np.take_along_axis(positives, top, axis=1).sum(axis=1)
    return float(np.mean(found / positives.sum(axis=1)))


def fit_adapter(
    queries: np.ndarray, docs: np.ndarray, positives: np.ndarray, args: AdapterArgs,
    dev: tuple[np.ndarray, np.ndarray] | None = None, k: int = 5, dev_docs: np.ndarray | None = None,
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Train A (d, d) from identity. With `dev` = (dev queries, dev positives), keep the epoch with the best dev
    recall@k (epoch 0 is the identity), ranked over `dev_docs` (default: `docs`). Returns (A, per-epoch log)."""
    import torch

    torch.manual_seed(args.seed)
    q = torch.from_numpy(queries).float()
    c = torch.from_numpy(docs).float()
    pos = torch.from_numpy(positives)
    pair_q, pair_d = np.nonzero(positives)  # one row per (query, gold document)
    dim = q.shape[1]
    eye = torch.eye(dim)
    adapter = torch.nn.Parameter(eye.clone())
    optimiser = torch.optim.Adam([adapter], lr=args.lr)
    ranked = docs if dev_docs is None else dev_docs
    best = (recall_at(dev[0], ranked, dev[1], k) if dev else -1.0, eye.clone())
    history = [{"epoch": 0, "loss": float("nan"), "dev_recall": best[0]}]
    generator = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(pair_q), generator=generator)
        total = 0.0
        for start in range(0, len(order), args.batch_size):
            rows = order[start : start + args.batch_size]
            qi, di = torch.from_numpy(pair_q[rows.numpy()]), torch.from_numpy(pair_d[rows.numpy()])
            loss = _pair_loss(q[qi], c, pos[qi], di, adapter, args.scale)
            loss = loss + args.identity_weight * ((adapter - eye) ** 2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(rows)
        a = adapter.detach()
        dev_recall = recall_at(apply_adapter(dev[0], a.numpy()), ranked, dev[1], k) if dev else float("nan")
        history.append({"epoch": epoch, "loss": total / len(order), "dev_recall": dev_recall})
        log.info("adapter epoch %d: loss %.4f dev recall@%d %.4f", epoch, total / len(order), k, dev_recall)
        if dev is None or dev_recall > best[0]:
            best = (dev_recall, a.clone())
    return best[1].numpy(), history


def _pair_loss(q, docs, positives, gold, adapter, scale: float):  # type: ignore[no-untyped-def]
    """q (b, d), docs (m, d), positives (b, m) bool, gold (b,) -> mean cross-entropy of gold vs all others."""
    import torch

    mapped = torch.nn.functional.normalize(q @ adapter.T, dim=1)
    logits = scale * mapped @ docs.T  # (b, m)
    other_gold = positives.clone()
    other_gold[torch.arange(len(gold)), gold] = False
    logits = logits.masked_fill(other_gold, float("-inf"))
    return torch.nn.functional.cross_entropy(logits, gold)
