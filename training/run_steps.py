"""Steps every recipe shares: open the run directory, pick the base model, train with resume, save, report.

Small functions, not a base trainer: each recipe module builds its own trl trainer and calls these around it.
"""

from __future__ import annotations

import logging
import math
import resource
from pathlib import Path
from typing import Any

from core.errors import DossierError
from domains.config import DomainConfig
from training.args import Recipe, recipe_to_dict
from training.formatting import FormatReport
from training.memory import PeakMemory
from training.model_io import parameter_counts
from training.run_dir import CONFIG, last_checkpoint, loss_log_callback, new_run_dir, write_json

log = logging.getLogger(__name__)


def base_model_ref(cfg: DomainConfig, recipe: Recipe) -> str:
    return recipe.train.model or cfg.models.generator


def start_run(cfg: DomainConfig, recipe: Recipe, output: str | Path | None, report: FormatReport) -> Path:
    """Create (or reopen, for --resume) the run dir and write its config and data report."""
    run = new_run_dir(cfg.name, recipe.name or recipe.task, output)
    write_json(run / CONFIG, {"domain": cfg.name, "base_model": base_model_ref(cfg, recipe),
                              "recipe": recipe_to_dict(recipe)})
    write_json(run / "data_report.json", report.as_dict())
    report.log(f"{recipe.task} data")
    if report.kept == 0:
        raise DossierError(f"no usable training records ({report.as_dict()['dropped']}); see {run}/data_report.json")
    return run


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def callbacks(run: Path) -> list[Any]:
    return [loss_log_callback(run)]


def train_and_save(
    trainer: Any, run: Path, tokenizer: Any, resume: bool, is_peft: bool, save: bool = True
) -> dict[str, Any]:
    """trainer.train (from the last checkpoint if `resume`), then save adapter/ or model/ and metrics.json."""
    checkpoint = last_checkpoint(run) if resume else None
    if resume and checkpoint is None:
        log.warning("--resume: no checkpoint in %s/checkpoints; starting from step 0", run)
    cpu_start = _cpu_seconds()
    with PeakMemory() as peak:
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    cpu_seconds = _cpu_seconds() - cpu_start  # on a shared machine this is far below the wall time
    out = run / ("adapter" if is_peft else "model")
    if save:
        trainer.save_model(str(out))
        tokenizer.save_pretrained(str(out))
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    metrics = {
        **result.metrics,
        **peak.report(),
        **parameter_counts(trainer.model),
        "steps": trainer.state.global_step,
        "cpu_time_s": cpu_seconds,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "resumed_from": str(checkpoint) if checkpoint else None,
    }
    if losses and not all(math.isfinite(x) for x in losses):
        log.error("non-finite loss in %s/loss.jsonl", run)
    write_json(run / "metrics.json", metrics)
    log.info("run %s: %d steps, loss %s -> %s, saved %s", run, metrics["steps"], metrics["first_loss"],
             metrics["last_loss"], out)
    return metrics
