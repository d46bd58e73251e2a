"""What evidence focus keeps and what it cuts, before any answer is generated.

For each question of a set's split, the product's retriever finds the evidence and `rag.prompting.evidence_for`
shows it whole and focused to N sentences a passage (`rag.evidence_focus`). Two figures per N:
- **reference kept**: of the questions whose reference answer occurs in the whole evidence (compared as evaluation
  compares answers, `eval.metrics.reference_contained`), the share whose focused evidence still holds it. Focusing can
  only lose a reference, never add one, so this is the ceiling it puts on "reference contained".
- **context characters**: the median length of the evidence block, whole and focused, which is what prefill pays for.

Choose N on the dev split; what it does to the answers is measured by `dossier eval answers --focus-sentences N`.

    python -m eval.focus_check --domain finance --evalset fincuge_finqa --split dev [--focus 1,2,3,4] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from core.records import Hit
from domains.config import GenerationConfig
from eval.metrics import reference_contained
from rag.prompting import evidence_for

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Found:
    """One question, its reference answer and the hits the retriever gave it."""

    question: str
    reference: str
    hits: tuple[Hit, ...]


def focus_table(found: Iterable[Found], generation: GenerationConfig, focus: Sequence[int]) -> list[dict[str, Any]]:
    """One row per focus value (0 = whole passages first): questions, how many hold the reference whole, the share
    of those still holding it, and the median context characters."""
    found = list(found)
    whole = [evidence_for(replace(generation, focus_sentences=0), f.hits, f.question).context for f in found]
    findable = [i for i, (context, f) in enumerate(zip(whole, found, strict=True))
                if reference_contained(context, f.reference)]
    rows = []
    for n in [0, *(n for n in focus if n > 0)]:
        contexts = whole if n == 0 else [
            evidence_for(replace(generation, focus_sentences=n), f.hits, f.question).context for f in found]
        kept = sum(reference_contained(contexts[i], found[i].reference) for i in findable)
        rows.append({"focus_sentences": n, "questions": len(found), "reference_in_whole_evidence": len(findable),
                     "reference_kept": round(kept / len(findable), 4) if findable else None,
                     "context_chars_median": statistics.median(len(c) for c in contexts) if contexts else 0})
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| focus sentences | questions | reference in the whole evidence | reference kept "
             "| context chars (median) |", "|---|---|---|---|---|"]
    for r in rows:
        kept = "–" if r["reference_kept"] is None else f"{r['reference_kept']:.3f}"
        name = "whole passages" if r["focus_sentences"] == 0 else str(r["focus_sentences"])
        lines.append(f"| {name} | {r['questions']} | {r['reference_in_whole_evidence']} | {kept} | "
                     f"{r['context_chars_median']:.0f} |")
    return "\n".join(lines)


def retrieve_all(cfg: Any, evalset: str, split: str, limit: int, batch: int = 16) -> list[Found]:
    """The product retriever's hits (the domain's index, no filter) for the set's answerable questions."""
    from eval.answer_items import set_items
    from eval.splits import leave_out_of_bank, parse_splits
    from rag.build_retrieval import build_retriever

    items, _ = set_items(cfg, evalset, parse_splits(split), limit=limit)
    retriever = build_retriever(leave_out_of_bank(cfg, parse_splits(split)), load=True)
    out: list[Found] = []
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        results = retriever.retrieve([item.question for item in chunk], cfg.retrieval.final_k, None)
        out += [Found(item.question, item.reference, tuple(r.hits)) for item, r in zip(chunk, results, strict=True)]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.focus_check", description=__doc__.split("\n")[0])
    parser.add_argument("--domain", required=True)
    parser.add_argument("--evalset", required=True, help="a set with reference answers")
    parser.add_argument("--split", default="dev", help="choose N on dev (default); report on test")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions")
    parser.add_argument("--focus", default="1,2,3,4", help="focus_sentences values to compare with whole passages")
    parser.add_argument("--embedding-precision", choices=("auto", "fp32", "bf16"), default="fp32",
                        help="query vectors' precision (default fp32: the same hits on every CPU)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from domains import load_domain
    from domains.config import with_embedding_precision

    cfg = with_embedding_precision(load_domain(args.domain), args.embedding_precision)
    found = retrieve_all(cfg, args.evalset, args.split, args.limit)
    rows = focus_table(found, cfg.generation, [int(n) for n in args.focus.split(",") if n.strip()])
    print(json.dumps(rows, ensure_ascii=False) if args.json else markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
