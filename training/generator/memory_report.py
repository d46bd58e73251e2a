"""Peak memory of full fine-tuning vs LoRA vs QLoRA on the same model, batch and data, with parameter counts.

Each method runs a few SFT steps in a fresh process (spawned), so one method's freed memory cannot hide
another's peak. QLoRA (4-bit bitsandbytes) needs a CUDA GPU: without one it is reported as skipped. Each row also
carries `dossier train plan`'s estimate for the same run, so a GPU run checks the estimate too. Writes
memory_report.json and memory.png (a bar per method) into the output directory.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import DossierError
from domains import load_domain
from training.args import Recipe
from training.memory import plot_memory
from training.model_io import GpuRequired
from training.run_dir import write_json

log = logging.getLogger(__name__)
METHODS = ("full", "lora", "qlora")


def _measure(domain: str, recipe: Recipe, output: str, queue: Any) -> None:
    """Child process: a short SFT run; puts its metrics (or the error) on the queue."""
    from training.generator.sft import run_sft

    try:
        _, metrics = run_sft(load_domain(domain), recipe, output=output, save=False)
        queue.put({"ok": True, **metrics})
    except GpuRequired as err:
        queue.put({"ok": False, "skipped": str(err)})
    except Exception as err:  # noqa: BLE001 - the parent reports every failure by method
        queue.put({"ok": False, "error": f"{type(err).__name__}: {err}"})


def measure_method(domain: str, recipe: Recipe, method: str, steps: int, out: Path) -> dict[str, Any]:
    from dataclasses import replace

    if method == "qlora" and not _cuda():
        return {"label": method, "ok": False, "skipped": "QLoRA (4-bit bitsandbytes) needs a CUDA GPU; none here"}
    train = replace(recipe.train, method=method, max_steps=steps, save_steps=0)  # no checkpoint: not what is measured
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_measure, args=(domain, replace(recipe, train=train), str(out / method), queue))
    child.start()
    result = queue.get()
    child.join()
    row = {"label": method, **result}
    log.info("memory %s: %s", method, {k: row.get(k) for k in ("peak_rss_mib", "trainable_params", "skipped")})
    return row


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def memory_report(domain: str, recipe: Recipe, out: Path, methods: Sequence[str] = METHODS,
                  steps: int = 2) -> list[dict[str, Any]]:
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise DossierError(f"unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}")
    out.mkdir(parents=True, exist_ok=True)
    rows = [{**measure_method(domain, recipe, method, steps, out), "estimated_peak_mib": estimated_peak(
        domain, recipe, method)} for method in methods]
    keys = ("label", "ok", "skipped", "error", "peak_rss_mib", "start_rss_mib", "delta_rss_mib", "cuda_peak_mib",
            "estimated_peak_mib", "trainable_params", "total_params", "train_runtime", "steps")
    table = [{k: row.get(k) for k in keys} for row in rows]
    write_json(out / "memory_report.json", {"domain": domain, "model": recipe.train.model, "steps": steps,
                                            "batch_size": recipe.train.batch_size, "rows": table})
    plot_memory(table, out / "memory.png", title=f"SFT peak memory, batch {recipe.train.batch_size}")
    return table


def estimated_peak(domain: str, recipe: Recipe, method: str) -> float:
    """`dossier train plan`'s estimate for the same recipe and method on this machine's device, so every report
    puts the estimate beside the measured peak (training/memory_estimate.py)."""
    from dataclasses import replace

    from training.plan import plan_recipe

    planned = replace(recipe, train=replace(recipe.train, method=method))
    return plan_recipe(load_domain(domain), planned, "cuda" if _cuda() else "cpu").memory.peak_mib


def _mib(value: Any) -> str:
    return f"{value:.0f}" if isinstance(value, int | float) else "-"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| method | peak RSS MiB | RSS growth in training MiB | CUDA peak MiB | estimated peak MiB | "
             "trainable params | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        mib = [_mib(r.get(key)) for key in ("peak_rss_mib", "delta_rss_mib", "cuda_peak_mib", "estimated_peak_mib")]
        params = f"{r['trainable_params']:,} / {r['total_params']:,}" if r.get("trainable_params") else "-"
        note = r.get("skipped") or r.get("error") or ""
        lines.append(f"| {r['label']} | {' | '.join(mib)} | {params} | {note} |")
    return "\n".join(lines)
