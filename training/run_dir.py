"""A training run's directory: config, data report, loss log, metrics, checkpoints, and the adapter / model.

    <run>/config.json        the recipe as run (after overrides), the resolved base model, the domain
    <run>/data_report.json   records kept / dropped by reason
    <run>/loss.jsonl         one row per logging step (step, epoch, loss, learning rate, ...)
    <run>/checkpoints/       trainer checkpoints every `save_steps` (resume with --resume)
    <run>/adapter/           the LoRA adapter (method lora / qlora) + tokenizer
    <run>/model/             the full model (method full, or a merged model) + tokenizer
    <run>/metrics.json       final training metrics, peak memory, parameter counts
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.paths import domain_workspace

CONFIG = "config.json"


def new_run_dir(domain: str, name: str, output: str | Path | None = None) -> Path:
    if output:
        path = Path(output)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = domain_workspace(domain) / "runs" / f"{name or 'run'}-{stamp}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path} not found: is {path.parent} a training run directory?")
    return json.loads(path.read_text(encoding="utf-8"))


def weights_dir(run: Path) -> Path:
    """Where a run keeps what it trained: adapter/ for LoRA runs, model/ for full / merged ones."""
    for name in ("adapter", "model"):
        if (run / name).is_dir():
            return run / name
    raise ConfigError(f"{run}: no adapter/ or model/ in it; has the run finished (or saved a checkpoint)?")


def last_checkpoint(run: Path) -> Path | None:
    found = sorted((run / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return found[-1] if found else None


def loss_log_callback(run: Path) -> Any:
    """A transformers callback appending each log row to <run>/loss.jsonl (the loss curve survives a crash)."""
    from transformers import TrainerCallback

    class LossLogCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - transformers' signature
            if logs:
                row = {"step": state.global_step, "epoch": state.epoch, "time": time.time(), **logs}
                with (run / "loss.jsonl").open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row, default=float) + "\n")

    return LossLogCallback()
