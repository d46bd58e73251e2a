"""Issue 12's reranker route, measured: a cross-encoder cheap enough for a 2-core CPU, on the product path.

    # the candidates: the shipped retriever over the whole index, per split (an evaluation of the train split
    # leaves the train questions out of the question bank, so its negatives are what a new question meets)
    dossier eval retrieval --domain medical --evalset huatuo26m_test_qa --split train --no-corpus-filter \
        --configs hybrid -k 1,5,20,30 --out runs/rr
    dossier eval retrieval --domain medical --evalset huatuo26m_test_qa --split dev,test --no-corpus-filter \
        --configs hybrid -k 1,5,20,30 --out runs/rr
    DOSSIER_CACHE_DIR=.cache .venv/bin/python bench/bench_cheap_reranker.py --domain medical \
        --train-run runs/rr/.../hybrid.jsonl --eval-run runs/rr/.../hybrid.jsonl [--layers 6] [--lr 3e-5] \
        [--epochs 1] [--top 20] [--threads 2] [--out DIR]

The model: the first `--layers` transformer layers of the domain's base embedder (EmbeddingGemma: 6 of 24 layers,
25M parameters besides the frozen token embeddings), reading "问：<question>\n答：<passage>", mean-pooled into one
linear logit. It is trained on the TRAIN split only: each question's gold document against `--negatives` documents
drawn from the shipped retriever's top `--top`, a softmax over the group (listwise), bf16 autocast on CPUs that
compute bf16 natively. It then scores the shipped top `--top` of every dev and test question, and the table reads
recall@5 of the fused order, of the cross-encoder alone, and of z(fused) + w * z(cross-encoder) for a few w, each
paired against the shipped order (95 % bootstrap interval, questions better / worse), with the cost per question.
Choose w on dev and read test at dev's choice. The model and the per-question scores go to `--out`:
`--load DIR/model.pt` re-scores without training, `--init DIR/model.pt` trains it one more epoch. Prints one
Markdown table. Measured (eval/README.md, "A cheap cross-encoder reranker"): it loses on medical dev, not shipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.hardware import precision_choice  # noqa: E402
from core.paths import index_root  # noqa: E402
from eval.metrics import recall_at_k  # noqa: E402
from eval.ragas_table import bootstrap_ci  # noqa: E402
from eval.splits import split_of  # noqa: E402
from models.registry import resolve_model  # noqa: E402
from retrieval.docstore import SqliteDocstore  # noqa: E402
from retrieval.index_files import DOCSTORE_FILE  # noqa: E402
from retrieval.store import IndexStore  # noqa: E402

log = logging.getLogger("bench_cheap_reranker")

WEIGHTS: tuple[float | None, ...] = (0.25, 0.5, 1.0, 2.0, None)  # None: the cross-encoder's order alone
QUERY_CHARS = 96
K = 5


def document_texts(domain: str) -> dict[str, str]:
    """doc_id -> the text of its first chunk (medical: 7,533 chunks of 7,365 documents), from the current index."""
    directory = IndexStore(index_root(domain)).current_dir()
    if directory is None:
        raise SystemExit(f"no index for {domain}: run `dossier index build --domain {domain}` first")
    store = SqliteDocstore(directory / DOCSTORE_FILE)
    keys = store.keys_by_doc()
    chunks = store.chunks([ks[0] for ks in keys.values()])
    return {doc: chunks[ks[0]].text for doc, ks in keys.items()}


def candidates(path: Path, top: int) -> list[dict[str, Any]]:
    """The run's rows with `cand` (the top `top` documents, fused order) and `fused` (their fused scores)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        docs: dict[str, float] = {}
        for hit in row["hits"]:
            docs.setdefault(hit["doc_id"], hit["score"])  # a document counts once, at its best chunk
        row["cand"], row["fused"] = list(docs)[:top], list(docs.values())[:top]
        row["split"] = str(split_of(row["id"]))
        rows.append(row)
    return rows


def build_model(base: str, layers: int) -> Any:
    import torch
    from transformers import AutoModel

    class TruncatedCrossEncoder(torch.nn.Module):
        """The base encoder's first `layers` layers, mean-pooled, one linear logit."""

        def __init__(self) -> None:
            super().__init__()
            self.body = AutoModel.from_pretrained(base, dtype=torch.float32)
            self.body.layers = self.body.layers[:layers]
            self.body.config.num_hidden_layers = layers
            self.head = torch.nn.Linear(self.body.config.hidden_size, 1)

        def forward(self, enc: dict[str, Any]) -> Any:
            hidden = self.body(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            return self.head(pooled.to(self.head.weight.dtype)).squeeze(-1)

    return TruncatedCrossEncoder()


def encoder(tokenizer: Any, max_length: int) -> Any:
    def encode(pairs: Sequence[tuple[str, str]]) -> Any:
        texts = [f"问：{q[:QUERY_CHARS]}\n答：{a}" for q, a in pairs]
        return tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length)
    return encode


def train(model: Any, encode: Any, rows: list[dict], texts: dict[str, str], args: argparse.Namespace,
          bf16: bool) -> list[float]:
    """Listwise: per question its gold document first, then `negatives` of the retriever's non-gold candidates."""
    import torch

    rng = random.Random(args.seed)
    model.body.embed_tokens.weight.requires_grad_(False)  # 262k x 768: most parameters, few rows touched
    head = list(model.head.parameters())
    body = [p for p in model.body.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": head, "lr": args.head_lr}],
                                  weight_decay=0.01)
    steps = int(len(rows) * args.epochs / args.questions_per_step)
    warmup = 20
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / steps))
    order: list[int] = []
    while len(order) < steps * args.questions_per_step:
        order += rng.sample(range(len(rows)), len(rows))
    model.train()
    losses: list[float] = []
    for step in tqdm(range(steps), desc="train", unit="step"):
        pairs, sizes = [], []
        for i in order[step * args.questions_per_step:(step + 1) * args.questions_per_step]:
            row = rows[i]
            negatives = [d for d in row["cand"] if d not in row["gold"]]
            group = [rng.choice(row["gold"]), *rng.sample(negatives, min(args.negatives, len(negatives)))]
            pairs += [(row["query"], texts[d]) for d in group]
            sizes.append(len(group))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            scores = model(encode(pairs)).float()
        target = torch.zeros(1, dtype=torch.long)
        loss = torch.stack([torch.nn.functional.cross_entropy(g.unsqueeze(0), target)
                            for g in torch.split(scores, sizes)]).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(body + head, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss))
    return losses


def score(model: Any, encode: Any, rows: list[dict], texts: dict[str, str]) -> float:
    """Adds `ce` (one score per candidate) to each row; returns milliseconds per question."""
    import torch

    started = time.perf_counter()
    with torch.inference_mode():
        for row in tqdm(rows, desc="rerank", unit="q"):
            row["ce"] = model(encode([(row["query"], texts.get(d, "")) for d in row["cand"]])).float().tolist()
    return (time.perf_counter() - started) * 1000 / max(1, len(rows))


def zscore(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return (array - array.mean()) / (array.std() + 1e-9)


def reranked_recall(rows: list[dict], weight: float | None) -> np.ndarray:
    out = []
    for row in rows:
        mixed = zscore(row["ce"]) if weight is None else zscore(row["fused"]) + weight * zscore(row["ce"])
        out.append(recall_at_k([row["cand"][i] for i in np.argsort(-mixed, kind="stable")], row["gold"], K))
    return np.asarray(out)


def table(by_split: dict[str, list[dict]], ms: dict[str, float]) -> str:
    lines = ["| split | order | recall@5 | vs fused [95 %] | better / worse |", "|---|---|---|---|---|"]
    for split, rows in by_split.items():
        shipped = np.asarray([recall_at_k(r["cand"], r["gold"], K) for r in rows])
        lines.append(f"| {split} ({len(rows)}, {ms[split]:.0f} ms / question) | shipped fusion | "
                     f"{shipped.mean():.3f} | | |")
        for weight in WEIGHTS:
            got = reranked_recall(rows, weight)
            low, high = bootstrap_ci((got - shipped).tolist()) or (0.0, 0.0)
            name = "cross-encoder alone" if weight is None else f"fused + {weight} x cross-encoder"
            better, worse = int((got > shipped).sum()), int((got < shipped).sum())
            lines.append(f"| | {name} | {got.mean():.3f} | {100 * (got - shipped).mean():+.1f} "
                         f"[{100 * low:+.1f}, {100 * high:+.1f}] | {better} / {worse} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default="medical")
    parser.add_argument("--base", default="embeddinggemma-300m", help="the encoder whose lower layers are used")
    parser.add_argument("--train-run", type=Path, required=True, help="hybrid.jsonl over the train split")
    parser.add_argument("--eval-run", type=Path, required=True, help="hybrid.jsonl over dev and test")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--max-length", type=int, default=160, help="tokens per (question, passage) pair")
    parser.add_argument("--top", type=int, default=20, help="candidates reranked (and negatives drawn from)")
    parser.add_argument("--negatives", type=int, default=4)
    parser.add_argument("--questions-per-step", type=int, default=4)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--precision", default="auto", help="auto: bf16 where the CPU computes it natively")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--load", type=Path, help="a model.pt of an earlier run: score only")
    parser.add_argument("--init", type=Path, help="a model.pt of an earlier run to train further (another epoch)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions of each split (a smoke run)")
    parser.add_argument("--out", type=Path, default=Path("runs/cheap-reranker"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    # the CPU on purpose: the route is a reranker cheap enough for the 2-core CPU the service runs on
    bf16 = precision_choice(args.precision, "cpu").value == "bf16"
    torch.manual_seed(args.seed)  # before the model: its score head starts from this seed
    args.out.mkdir(parents=True, exist_ok=True)
    texts = document_texts(args.domain)
    base = resolve_model(args.base)
    encode = encoder(AutoTokenizer.from_pretrained(base), args.max_length)
    model = build_model(base, args.layers)
    if args.load or args.init:
        model.load_state_dict(torch.load(args.load or args.init))
    if not args.load:
        rows = [r for r in candidates(args.train_run, args.top)
                if r["split"] == "train" and r["gold"] and all(g in texts for g in r["gold"])]
        rows = rows[: args.limit or None]
        started = time.perf_counter()
        losses = train(model, encode, rows, texts, args, bf16)
        log.info("trained on %d questions in %.0f s; loss %.3f -> %.3f (chance: ln(%d) = %.3f)", len(rows),
                 time.perf_counter() - started, np.mean(losses[:20]), np.mean(losses[-50:]), args.negatives + 1,
                 np.log(args.negatives + 1))
        torch.save(model.state_dict(), args.out / "model.pt")
    model.eval()
    if bf16:
        model.to(torch.bfloat16)
    evaluated = [r for r in candidates(args.eval_run, args.top) if r["gold"]]
    by_split = {s: [r for r in evaluated if r["split"] == s][: args.limit or None] for s in ("dev", "test")}
    ms = {split: score(model, encode, rows, texts) for split, rows in by_split.items() if rows}
    by_split = {s: rows for s, rows in by_split.items() if rows}
    (args.out / "scores.json").write_text(json.dumps(
        {s: [{k: r[k] for k in ("id", "gold", "cand", "fused", "ce")} for r in rows] for s, rows in by_split.items()},
        ensure_ascii=False), encoding="utf-8")
    sys.stdout.write(table(by_split, ms) + "\n")


if __name__ == "__main__":
    main()
