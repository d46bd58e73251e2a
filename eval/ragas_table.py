"""The RAGAS table of finished (or partly finished) judge runs, read from their score files alone.

A judge run over 100 answers costs one to three hours of CPU, so its scores are kept: each run's
`<run>/judge/judge-out.jsonl` (the rows `eval/ragas_judge.py` writes) is copied under `eval/data/ragas/` and this
module turns those files back into the reported table. Per metric it gives the mean over the cells the judge
scored, a 95 % percentile-bootstrap interval (resampling answers), the number of cells scored and the judge's
failures beside it (a failed cell is never averaged in). Abstained rows carry no metric and are counted apart.

    python -m eval.ragas_table eval/data/ragas/*.judge-out.jsonl [--json]
    python -m eval.ragas_table legal=runs/answers/<run>/judge/judge-out.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from eval.evalsets import read_jsonl

log = logging.getLogger(__name__)

# the LLM-judged metrics first, in the order, then the non-LLM ones
METRICS = ("faithfulness", "answer_relevancy", "llm_context_precision_with_reference", "context_recall",
           "bleu_score", "rouge_score", "non_llm_string_similarity")
SHORT = {"llm_context_precision_with_reference": "context_precision", "non_llm_string_similarity": "string_similarity"}
NOT_METRICS = frozenset({"id", "key", "failures", "skipped"})
RESAMPLES = 2000


def bootstrap_ci(values: Sequence[float], resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float] | None:
    """95 % percentile-bootstrap interval of the mean; None under two values (no spread to resample)."""
    if len(values) < 2:
        return None
    rng = random.Random(seed)  # seeded: the table is the same every time it is printed
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def run_stats(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per metric: mean, interval, cells scored, failures; plus how many rows were judged and skipped."""
    scored = [r for r in records if "skipped" not in r]
    names = [m for m in METRICS if any(m in r for r in scored)]
    names += sorted({k for r in scored for k in r} - NOT_METRICS - set(names))  # a metric this table does not know
    metrics = {}
    for name in names:
        values = [float(r[name]) for r in scored if r.get(name) is not None]
        failures = sum(1 for r in scored if name in (r.get("failures") or {}))
        mean = sum(values) / len(values) if values else None
        metrics[name] = {"mean": mean, "ci95": bootstrap_ci(values), "scored": len(values), "failures": failures}
    return {"rows": len(records), "judged": len(scored), "abstained": len(records) - len(scored), "metrics": metrics}


def _cell(stat: Mapping[str, Any]) -> str:
    if stat["mean"] is None:
        return f"— ({stat['failures']} failed)"
    ci = stat["ci95"]
    spread = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
    failed = f", {stat['failures']} failed" if stat["failures"] else ""
    return f"{stat['mean']:.3f}{spread} (n {stat['scored']}{failed})"


def markdown(runs: Mapping[str, Mapping[str, Any]]) -> str:
    names = [m for m in METRICS if any(m in s["metrics"] for s in runs.values())]
    names += sorted({m for s in runs.values() for m in s["metrics"]} - set(names))
    head = ["run", "judged", "abstained"] + [SHORT.get(m, m) for m in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, stats in runs.items():
        cells = [label, str(stats["judged"]), str(stats["abstained"])]
        cells += [_cell(stats["metrics"][m]) if m in stats["metrics"] else "—" for m in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _label(arg: str) -> tuple[str, Path]:
    """`label=path`; else a run's `<run>/judge/judge-out.jsonl` is labelled by its run, any other file by its name."""
    label, sep, path = arg.partition("=")
    if sep:
        return label, Path(path)
    path = Path(arg)
    if path.name == "judge-out.jsonl" and path.parent.name == "judge":  # every run's file has this name
        return path.parent.parent.name, path
    return path.name.removesuffix(".jsonl").removesuffix(".judge-out"), path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scores", nargs="+", help="judge-out JSONL files, each as PATH or LABEL=PATH")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of a Markdown table")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    runs = {}
    for arg in args.scores:
        label, path = _label(arg)
        if not path.is_file():
            p.error(f"{path}: no such score file (a judge run writes <run>/judge/judge-out.jsonl)")
        try:
            runs[label] = run_stats(list(read_jsonl(path)))
        except ConfigError as error:  # a line cut short by a killed copy: say which file and line
            p.error(str(error))
    sys.stdout.write((json.dumps(runs, ensure_ascii=False, indent=1) if args.json else markdown(runs)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
