"""Two answer runs over the same questions, compared question by question (base vs tuned, one backend vs another).

A difference of two runs' means says little on 100-odd questions unless its spread is known, and the two runs are
not independent samples: they answered the same questions. So the interval is a paired bootstrap. Each resample
draws question ids with replacement, both runs' metrics are recomputed over that same draw by `summarise` (the
function that wrote the runs' summaries, so a metric over answered questions only stays over answered questions
only), and the 2.5th and 97.5th percentiles of the difference are the 95 % interval. The per-question counts (better
/ worse / tied) are read where a metric is defined per question in both runs.

RAGAS scores are not resampled here (they live in the judge's table, eval/ragas_table.py, with their own intervals).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from eval.answer_report import _fmt
from eval.answer_run import ROWS, summarise

RESAMPLES = 2000
# summary metric -> the per-question score it averages, where better / worse counts mean something
PER_QUESTION = {"char_f1": "char_f1", "rouge_l": "rouge_l", "reference_contained": "reference_contained",
                "citation_precision": "citation_precision", "mcq_accuracy": "mcq_correct"}


@dataclass(frozen=True, slots=True)
class PairedMetric:
    name: str
    a: float | None
    b: float | None
    ci95: tuple[float, float] | None  # of b - a; None where most resamples leave the metric undefined
    better: int | None = None  # questions where b scores higher than a (per-question scores only)
    worse: int | None = None

    @property
    def difference(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


def load_rows(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / ROWS if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {ROWS} (is it an answer run directory?)")
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _by_id(rows: Sequence[Mapping[str, Any]], run: str) -> dict[str, Mapping[str, Any]]:
    found = {str(r["id"]): r for r in rows}
    if len(found) != len(rows):
        raise ConfigError(f"{run}: {len(rows) - len(found)} question ids repeat; a paired comparison needs each once")
    return found


def paired_rows(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]]
                ) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Both runs' rows in one order. The runs must hold the same questions: pairing a subset would compare
    different question mixes (a run with fewer unanswerable questions has another abstention F1) in silence."""
    a, b = _by_id(rows_a, "first run"), _by_id(rows_b, "second run")
    if a.keys() != b.keys():
        only_a, only_b = len(a.keys() - b.keys()), len(b.keys() - a.keys())
        raise ConfigError(f"the runs answered different questions ({only_a} only in the first, {only_b} only in the "
                          "second): run both with the same --evalset, --split, --limit and --unanswerable")
    if not a:
        raise ConfigError("the runs hold no rows: nothing to compare")
    ids = sorted(a)
    return [a[i] for i in ids], [b[i] for i in ids]


def _counts(name: str, rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]]
            ) -> tuple[int | None, int | None]:
    pairs = [(ra.get(name), rb.get(name)) for ra, rb in zip(rows_a, rows_b, strict=True)]
    pairs = [(float(x), float(y)) for x, y in pairs if x is not None and y is not None]
    if not pairs:
        return None, None
    return sum(y > x for x, y in pairs), sum(y < x for x, y in pairs)


def compare_paired(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]],
                   resamples: int = RESAMPLES, seed: int = 0) -> list[PairedMetric]:
    """Per metric of `summarise`: both runs' values, the paired 95 % interval of b - a, and per-question counts."""
    rows_a, rows_b = paired_rows(rows_a, rows_b)
    whole_a, whole_b = summarise(rows_a)["metrics"], summarise(rows_b)["metrics"]
    names = [k for k in whole_a if whole_a[k] is not None or whole_b.get(k) is not None]
    rng = random.Random(seed)  # seeded: the same runs print the same table
    n = len(rows_a)
    draws: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(resamples):
        picks = [rng.randrange(n) for _ in range(n)]
        got_a = summarise([rows_a[i] for i in picks])["metrics"]
        got_b = summarise([rows_b[i] for i in picks])["metrics"]
        for k in names:
            if got_a.get(k) is not None and got_b.get(k) is not None:
                draws[k].append(got_b[k] - got_a[k])
    out = []
    for k in names:
        values = sorted(draws[k])
        # a metric over a subset (answered, multiple choice) is undefined in a draw that holds none of it; the
        # interval is over the draws that define it, and none is given where most do not
        ci = None if len(values) < resamples / 2 else (values[int(0.025 * len(values))],
                                                       values[int(0.975 * len(values)) - 1])
        better, worse = _counts(PER_QUESTION[k], rows_a, rows_b) if k in PER_QUESTION else (None, None)
        out.append(PairedMetric(k, whole_a[k], whole_b.get(k), ci, better, worse))
    return out


def paired_table(metrics: Sequence[PairedMetric], label_a: str, label_b: str, n: int,
                 resamples: int = RESAMPLES) -> str:
    """Markdown: metric | a | b | b - a | 95 % interval | questions better / worse."""
    lines = [f"Paired over the same {n} questions, a {resamples}-resample bootstrap of question ids.", "",
             f"| metric | {label_a} | {label_b} | difference | 95 % interval | better / worse |",
             "|---|---|---|---|---|---|"]
    for m in metrics:
        ci = "—" if m.ci95 is None else f"[{m.ci95[0]:+.3f}, {m.ci95[1]:+.3f}]"
        counts = "" if m.better is None else f"{m.better} / {m.worse}"
        difference = "—" if m.difference is None else f"{m.difference:+.3f}"
        lines.append(f"| {m.name} | {_fmt(m.a)} | {_fmt(m.b)} | {difference} | {ci} | {counts} |")
    return "\n".join(lines)


def as_json(metrics: Sequence[PairedMetric]) -> dict[str, Any]:
    return {m.name: {"a": m.a, "b": m.b, "difference": m.difference,
                     "ci95": list(m.ci95) if m.ci95 else None, "better": m.better, "worse": m.worse}
            for m in metrics}
