"""An answer run's files: config.json, summary.json, report.md with a plot (metrics.png), and `compare`, which puts
several runs' summaries side by side (base vs tuned, with vs without retrieval, one backend vs another)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from eval.answer_run import SUMMARY, RunSpec

log = logging.getLogger(__name__)

PLOTTED = ("mcq_accuracy", "char_f1", "rouge_l", "citation_precision", "citation_coverage", "evidence_recall",
           "abstention_f1", "false_refusal_rate", "pasted_rate", "ragas_faithfulness", "ragas_answer_relevancy",
           "ragas_llm_context_precision_with_reference", "ragas_context_recall")


def summary_json(spec: RunSpec, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The shape `--json` prints: {"domain", "evalset", "n", "model", "retrieval", "metrics", "counts", ...}."""
    return {"domain": spec.domain, "evalset": spec.evalset, "n": summary["counts"]["n"], "model": spec.model,
            "generator": spec.generator, "retrieval": spec.retrieval, "splits": list(spec.splits),
            "metrics": dict(summary["metrics"]), "counts": {**summary["counts"], "skipped": spec.skipped_records},
            "timing": dict(summary["timing"]),
            "judge": dict(summary.get("judge") or {"name": "none", "failures": {}})}


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_table(summaries: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> str:
    names = [k for k in summaries[0]["metrics"] if any(s["metrics"].get(k) is not None for s in summaries)]
    lines = ["| metric | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    lines += [f"| {k} | " + " | ".join(_fmt(s["metrics"].get(k)) for s in summaries) + " |" for k in names]
    lines += [f"| n ({k}) | " + " | ".join(_fmt(s["counts"].get(k)) for s in summaries) + " |"
              for k in ("n", "answered", "unanswerable")]
    return "\n".join(lines)


def plot_metrics(summary: Mapping[str, Any], path: Path, title: str) -> Path | None:
    values = {k: summary["metrics"].get(k) for k in PLOTTED if summary["metrics"].get(k) is not None}
    if not values:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.barh(list(values), list(values.values()), color="#4c72b0")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=9)
    for y, v in enumerate(values.values()):
        ax.text(min(v + 0.01, 0.9), y, f"{v:.3f}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_run(run_dir: Path, spec: RunSpec, summary: Mapping[str, Any], command: str) -> dict[str, Any]:
    out = summary_json(spec, summary)
    (run_dir / "config.json").write_text(json.dumps({**asdict(spec), "command": command}, ensure_ascii=False,
                                                    indent=1), encoding="utf-8")
    (run_dir / SUMMARY).write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
    plot = plot_metrics(summary, run_dir / "metrics.png", spec.tag)
    report = [f"# Answer run {spec.tag}", "", f"`{command}`", "", markdown_table([out], [spec.tag]), ""]
    if plot is not None:
        report += ["![metrics](metrics.png)", ""]
    if summary.get("judge"):
        judge = summary["judge"]
        report += [f"Judge {judge['name']}: failures per metric {judge['failures'] or 'none'}; "
                   f"{judge['skipped_abstained']} abstentions not judged (RAGAS scores a right refusal 0).", ""]
    report += ["Rows: `rows.jsonl` (one per question: hits, prompt, answer, citations, unsupported sentences, "
               "scores, timings)."]
    (run_dir / "report.md").write_text("\n".join(report) + "\n", encoding="utf-8")
    return out


def load_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / SUMMARY if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {SUMMARY} (is it an answer run directory?)")
    return json.loads(path.read_text(encoding="utf-8"))


def compare(run_dirs: Sequence[Path]) -> str:
    """The runs' metrics side by side, one column per run."""
    summaries = [load_summary(d) for d in run_dirs]
    labels = [f"{s['model']} {'rag' if s['retrieval'] else 'closed'} ({Path(d).name})"
              for s, d in zip(summaries, run_dirs, strict=True)]
    return markdown_table(summaries, labels)
