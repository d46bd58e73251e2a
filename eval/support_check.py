"""How well does `rag.support.judge` agree with a careful human reader? A hand-labelled measurement.

`eval/data/support_labels.jsonl` holds 52 rows (30 legal, 10 medical, 12 finance), each a real passage from a shipped
corpus, its title, one answer sentence written the way a small model would write it, and a label: `supported` is
true only when everything the sentence claims is in the passage. The labels were made by reading the passage, not
by running the check. `score` runs `judge` on every row and reports, for each class ("supported" and
"unsupported"), precision / recall / F1, with accuracy and the rows where the check and the label disagree.

    python -m eval.support_check [--file PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.evalsets import read_labelled
from rag.support import judge

log = logging.getLogger(__name__)

LABELS = Path(__file__).resolve().parent / "data" / "support_labels.jsonl"
FIELDS = ("id", "domain", "title", "passage", "sentence", "supported", "note")


def load_labels(path: Path = LABELS) -> list[dict[str, Any]]:
    """The labelled rows of `path`; a row missing a field or with a non-boolean label raises ValueError."""
    rows = read_labelled(path, FIELDS)
    for row in rows:
        if not isinstance(row["supported"], bool):
            raise ValueError(f"{path}: row {row['id']}: 'supported' must be true or false")
    return rows


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def _class_figures(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {"precision": precision, "recall": recall, "f1": f1}


def score(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Run `judge` on every row and compare its verdict with the label.

    Returns `n`, the confusion counts (`tp`: supported and judged supported, `fp`: unsupported judged supported,
    `fn`: supported judged unsupported, `tn`: unsupported judged unsupported), `accuracy`, per-class figures under
    `supported` and `unsupported` (precision, recall, f1, and `n` the rows with that label), and `disagreements`:
    a list of {id, label, verdict, overlap, reason, sentence}.
    """
    tp = fp = fn = tn = 0
    disagreements: list[dict[str, Any]] = []
    for row in rows:
        label = bool(row["supported"])
        verdict = judge(row["sentence"], row["title"], row["passage"])
        if label and verdict.supported:
            tp += 1
        elif label:
            fn += 1
        elif verdict.supported:
            fp += 1
        else:
            tn += 1
        if label != verdict.supported:
            disagreements.append({"id": row["id"], "label": label, "verdict": verdict.supported,
                                  "overlap": round(verdict.overlap, 3), "reason": verdict.reason,
                                  "sentence": row["sentence"]})
    n = tp + fp + fn + tn
    return {
        "n": n, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "accuracy": _ratio(tp + tn, n),
        "supported": {**_class_figures(tp, fp, fn), "n": tp + fn},
        # the "unsupported" class: its true positives are tn, its false positives fn, its false negatives fp
        "unsupported": {**_class_figures(tn, fn, fp), "n": tn + fp},
        "disagreements": disagreements,
    }


def markdown(result: dict[str, Any]) -> str:
    """The figures and the disagreements of `score` as Markdown tables."""
    lines = [
        f"{result['n']} rows; accuracy {result['accuracy']:.3f} "
        f"(tp {result['tp']}, fp {result['fp']}, fn {result['fn']}, tn {result['tn']})",
        "",
        "| class | labelled | precision | recall | F1 |",
        "|---|---|---|---|---|",
    ]
    for name in ("supported", "unsupported"):
        c = result[name]
        lines.append(f"| {name} | {c['n']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} |")
    lines += ["", f"Disagreements ({len(result['disagreements'])}):", "",
              "| id | label | verdict | overlap | reason | sentence |", "|---|---|---|---|---|---|"]
    for d in result["disagreements"]:
        label = "supported" if d["label"] else "unsupported"
        verdict = "supported" if d["verdict"] else "unsupported"
        lines.append(f"| {d['id']} | {label} | {verdict} | {d['overlap']:.2f} | {d['reason'] or '-'} | "
                     f"{d['sentence']} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.support_check",
                                     description="Agreement of rag.support.judge with hand labels.")
    parser.add_argument("--file", type=Path, default=LABELS, help="labelled JSONL (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of Markdown")
    args = parser.parse_args(argv)
    result = score(load_labels(args.file))
    print(json.dumps(result, ensure_ascii=False, indent=2) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
