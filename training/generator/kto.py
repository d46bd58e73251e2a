"""Kahneman-Tversky optimisation with trl's KTOTrainer: learns from single answers marked good or bad (a thumbs
up / down in the service), no pairs needed. Preference pairs count as one good and one bad answer each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domains.config import DomainConfig
from training.args import Recipe
from training.generator.preferences import kto_dataset, load_kto
from training.model_io import load_model, load_tokenizer
from training.run_steps import base_model_ref, callbacks, start_run, train_and_save
from training.trl_configs import kto_config, lora_config


def run_kto(
    cfg: DomainConfig, recipe: Recipe, output: str | Path | None = None, resume: bool = False
) -> tuple[Path, dict[str, Any]]:
    from trl import KTOTrainer

    ref = base_model_ref(cfg, recipe)
    tokenizer = load_tokenizer(ref)
    rows, report = load_kto(cfg, recipe.data)
    run = start_run(cfg, recipe, output, report)
    is_peft = recipe.train.method != "full"
    trainer = KTOTrainer(
        model=load_model(ref, recipe.train),
        ref_model=None,
        args=kto_config(recipe.train, run / "checkpoints"),
        train_dataset=kto_dataset(rows),
        processing_class=tokenizer,
        peft_config=lora_config(recipe.lora) if is_peft else None,
        callbacks=callbacks(run),
    )
    return run, train_and_save(trainer, run, tokenizer, resume, is_peft)
