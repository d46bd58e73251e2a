"""Hit@k with judged misses: where an eval set's gold labels are noisy, a reader's judgment of each miss says whether
the retriever found a correct basis the label does not list.

Gold labels made automatically can be wrong. The lawyer-llama consultation set, for one, gives the marriage-property
articles as the gold of a question about defamation. Its labelled hit@5 then counts a correct retrieval (名誉权 and
the offence of 诽谤) as a miss. The usual remedy in IR evaluation is pooled relevance judgments: the labelled gold
stays relevant, and a reader judges the retrieved documents the labels do not cover.

A judgments file is JSONL, one judged miss a line:

    {"id": "...", "judgment": "basis-retrieved", "basis": ["<doc id>", ...], "note": "why"}

The judgments are:
- `basis-retrieved`: the top k holds an article a lawyer would cite for the question, and `basis` names it;
- `retrieval-miss`: the labelled gold is apt, and the retriever missed it;
- `partial`: the top k is on topic, but the specific basis is missing;
- `no-usable-label`: neither the gold nor the top k answers the question (a truncated question, or one no statute
  of the corpus answers).

Only `basis-retrieved` turns a miss into a hit, and only while its `basis` is still in the run's top k. A miss the
file does not judge (a new retriever's new miss) stays a miss, and the report counts it, so judging one run never
inflates another run's figure silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from eval.evalsets import read_jsonl

JUDGMENTS = ("basis-retrieved", "retrieval-miss", "partial", "no-usable-label")


@dataclass(frozen=True, slots=True)
class Judgment:
    query_id: str
    judgment: str
    basis: tuple[str, ...] = ()
    note: str = ""


def read_judgments(path: Path) -> dict[str, Judgment]:
    """query id -> Judgment; an unknown judgment, a `basis-retrieved` without basis or a query judged twice is an
    error that names the record."""
    out: dict[str, Judgment] = {}
    for number, raw in enumerate(read_jsonl(Path(path)), start=1):
        judgment = Judgment(str(raw.get("id", "")), str(raw.get("judgment", "")), tuple(raw.get("basis", ())),
                            str(raw.get("note", "")))
        where = f"{path}, judgment {number}"
        if not judgment.query_id:
            raise ConfigError(f"{where}: no query id")
        if judgment.judgment not in JUDGMENTS:
            raise ConfigError(f"{where}: {judgment.judgment!r} is not one of {', '.join(JUDGMENTS)}")
        if judgment.judgment == "basis-retrieved" and not judgment.basis:
            raise ConfigError(f"{where}: a basis-retrieved judgment must name its basis documents")
        if judgment.query_id in out:
            raise ConfigError(f"{where}: query {judgment.query_id} judged twice")
        out[judgment.query_id] = judgment
    return out


def adjudicated_hits(rows: Iterable[Mapping[str, Any]], judgments: Mapping[str, Judgment], k: int) -> dict[str, Any]:
    """Labelled and adjudicated hit@k over the rows of a retrieval run (`id`, `gold`, `ranked`, as
    eval.retrieval_run writes them), with the judged misses counted by judgment."""
    rows = list(rows)
    if not rows:
        raise ConfigError("no rows to adjudicate")
    labelled = adjudicated = unjudged = stale = 0
    counts: Counter[str] = Counter()
    for number, row in enumerate(rows, start=1):
        if not {"id", "gold", "ranked"} <= row.keys():
            raise ConfigError(f"run row {number} lacks id / gold / ranked: not a retrieval run's per-query row")
        top = {str(doc) for doc in row["ranked"][:k]}
        if {str(doc) for doc in row["gold"]} & top:
            labelled += 1
            adjudicated += 1
            continue
        judgment = judgments.get(str(row["id"]))
        if judgment is None:
            unjudged += 1
            continue
        counts[judgment.judgment] += 1
        if judgment.judgment == "basis-retrieved":
            if set(judgment.basis) & top:
                adjudicated += 1
            else:
                stale += 1  # judged on another run, whose top k held the basis; this one's does not
    n = len(rows)
    usable = n - counts["no-usable-label"]
    return {
        "n": n, "k": k,
        f"hit@{k}": labelled / n,
        f"adjudicated_hit@{k}": adjudicated / n,
        f"adjudicated_hit@{k}_usable_labels": adjudicated / usable if usable else None,
        "misses": n - labelled,
        "judged": dict(sorted(counts.items())),
        "unjudged_misses": unjudged,
        "basis_no_longer_in_top_k": stale,
    }
