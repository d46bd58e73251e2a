"""Helpers for the training tests: small recipes over the tiny models, small data files, weight snapshots."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.args import Recipe, merge_overrides, recipe_from_mapping

SMOKE_TRAIN = {"max_steps": 2, "batch_size": 2, "precision": "fp32", "learning_rate": 1e-2, "save_steps": 100,
               "logging_steps": 1, "max_length": 96}


def smoke_recipe(task: str, model: Path, data: dict[str, Any], overrides: Sequence[str] = (), **train: Any) -> Recipe:
    mapping = {"task": task, "name": f"smoke-{task}", "train": {**SMOKE_TRAIN, "model": str(model), **train},
               "lora": {"r": 4, "alpha": 8, "dropout": 0.0}, "data": data}
    return recipe_from_mapping(merge_overrides(mapping, overrides))


def head_jsonl(path: Path, n: int) -> list[dict[str, Any]]:
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            rows.append(json.loads(line))
            if len(rows) == n:
                break
    return rows


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def safetensors_weights(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    out: dict[str, Any] = {}
    for file in sorted(folder.glob("*.safetensors")):
        out.update(load_file(file))
    return out
