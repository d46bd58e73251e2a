"""How far can the RAGAS judge be trusted? Its faithfulness verdicts against answers a person read and labelled.

`eval/data/judge_trust_labels.jsonl` holds 20 real answers of the base generator (7 legal consultation, 7 medical
Huatuo, 6 finance FinQA; test split, with retrieval) with the evidence they were given and a label: `faithful` is
true when every claim of the answer is in the evidence (a pasted passage is faithful, however unhelpful), false
when the answer states something the evidence does not (an invented year, a changed article, the user's question
recited as if it were evidence), and null when the answer makes no claim at all (only markers): such rows are
left out of the agreement. The labels were made by reading, before the judge's scores were seen.

The judge calls an answer faithful when its faithfulness score is ≥ 0.5. `agreement` reports the confusion
counts, raw agreement, Cohen's kappa (agreement beyond what the two label rates give by chance), the judge's
failures (no score) and every row where the judge and the reader disagree.

    python -m eval.judge_trust --judge local|URL [--out DIR] [--json]   # runs the judge, then compares
    python -m eval.judge_trust --scores judge-out.jsonl [--json]      # compares a finished judge run
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.evalsets import read_jsonl, read_labelled

log = logging.getLogger(__name__)

LABELS = Path(__file__).resolve().parent / "data" / "judge_trust_labels.jsonl"
FIELDS = ("id", "domain", "question", "answer", "contexts", "faithful", "why")
FAITHFUL_AT = 0.5


def load_labels(path: Path = LABELS) -> list[dict[str, Any]]:
    """The labelled answers; a row missing a field or with a label other than true / false / null raises."""
    rows = read_labelled(path, FIELDS)
    for row in rows:
        if row["faithful"] not in (True, False, None):
            raise ValueError(f"{path}: row {row['id']}: 'faithful' must be true, false or null")
    return rows


def _kappa(tp: int, fp: int, fn: int, tn: int) -> float:
    n = tp + fp + fn + tn
    if not n:
        return 0.0
    observed = (tp + tn) / n
    chance = ((tp + fn) * (tp + fp) + (tn + fp) * (tn + fn)) / (n * n)
    return 0.0 if chance == 1.0 else (observed - chance) / (1.0 - chance)


def agreement(labels: Sequence[Mapping[str, Any]], scores: Mapping[str, float | None]) -> dict[str, Any]:
    """Compare the reader's labels with the judge's faithfulness scores (by row id; None = the judge failed).

    Positive class: faithful. `tp` both say faithful, `fp` the judge says faithful and the reader does not, `fn`
    the judge says unfaithful and the reader faithful, `tn` both unfaithful. Rows without a label are skipped;
    rows the judge could not score are counted under `judge_failures`, not guessed.
    """
    tp = fp = fn = tn = failures = unlabelled = 0
    disagreements: list[dict[str, Any]] = []
    for row in labels:
        if row["faithful"] is None:
            unlabelled += 1
            continue
        score = scores.get(row["id"])
        if score is None:
            failures += 1
            continue
        label, verdict = bool(row["faithful"]), score >= FAITHFUL_AT
        tp += label and verdict
        fn += label and not verdict
        fp += verdict and not label
        tn += not label and not verdict
        if label != verdict:
            disagreements.append({"id": row["id"], "label": label, "score": round(score, 3), "why": row["why"]})
    n = tp + fp + fn + tn
    return {"n": n, "tp": tp, "fp": fp, "fn": fn, "tn": tn, "judge_failures": failures, "unlabelled": unlabelled,
            "agreement": (tp + tn) / n if n else 0.0, "kappa": _kappa(tp, fp, fn, tn),
            "unfaithful_caught": tn / (tn + fp) if tn + fp else 0.0, "disagreements": disagreements}


def read_scores(path: Path) -> dict[str, float | None]:
    """Faithfulness by row id from `eval/ragas_judge.py`'s output (null where the judge failed)."""
    return {row["id"]: _faithfulness(row) for row in read_jsonl(Path(path))}


def _faithfulness(row: Mapping[str, Any]) -> float | None:
    value = row.get("faithfulness")
    return None if value is None else float(value)


def markdown(result: Mapping[str, Any]) -> str:
    lines = [f"{result['n']} answers compared ({result['unlabelled']} without a claim left out, "
             f"{result['judge_failures']} the judge could not score)", "",
             "| | reader: faithful | reader: unfaithful |", "|---|---|---|",
             f"| judge ≥ {FAITHFUL_AT} | {result['tp']} | {result['fp']} |",
             f"| judge < {FAITHFUL_AT} | {result['fn']} | {result['tn']} |", "",
             f"agreement {result['agreement']:.3f}, Cohen's kappa {result['kappa']:.3f}, unfaithful answers the "
             f"judge caught {result['unfaithful_caught']:.3f}", ""]
    if result["disagreements"]:
        lines += ["| id | reader | judge faithfulness | the reader's reason |", "|---|---|---|---|"]
        lines += [f"| {d['id']} | {'faithful' if d['label'] else 'unfaithful'} | {d['score']:.3f} | {d['why']} |"
                  for d in result["disagreements"]]
    return "\n".join(lines)


def run_judge_on_labels(labels: Sequence[Mapping[str, Any]], judge: str, work: Path,
                        timeout_s: int = 900) -> dict[str, float | None]:
    """Score the labelled answers' faithfulness with the judge (no reference: the other metrics are not asked)."""
    from contextlib import ExitStack

    from eval.answer_judge import judge_name, local_judge, run_judge

    rows = [{"id": r["id"], "question": r["question"], "answer": r["answer"], "contexts": r["contexts"],
             "reference": None, "kind": "open", "abstained": False} for r in labels if r["faithful"] is not None]
    with ExitStack() as stack:
        url = stack.enter_context(local_judge()) if judge == "local" else judge
        scored, _summary = run_judge(rows, work, url, None, timeout_s=timeout_s, judge_id=judge_name(judge))
    return {rid: _faithfulness(row) for rid, row in scored.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.judge_trust", description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=LABELS, help="labelled answers (default: %(default)s)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--judge", metavar="local|URL", help="run the judge on the labelled answers")
    source.add_argument("--scores", type=Path, help="a finished judge run's output JSONL")
    parser.add_argument("--out", type=Path, default=Path("runs/judge-trust"), help="work folder for --judge")
    parser.add_argument("--timeout", type=int, default=900, metavar="S",
                        help="seconds one judge request may take (default 900; raise it on a busy CPU)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args(argv)
    labels = load_labels(args.file)
    if args.scores:
        scores = read_scores(args.scores)
    else:
        scores = run_judge_on_labels(labels, args.judge, args.out, args.timeout)
    result = agreement(labels, scores)
    print(json.dumps(result, ensure_ascii=False, indent=2) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
