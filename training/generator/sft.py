"""Supervised fine-tuning (LoRA / QLoRA / full) with trl's SFTTrainer on examples masked to the answers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from core.protocols import Retriever
from domains.config import DomainConfig
from training.args import Recipe
from training.formatting import to_dataset
from training.generator.sft_data import build_sft_chats
from training.model_io import load_model, load_tokenizer
from training.run_steps import base_model_ref, callbacks, start_run, train_and_save
from training.trl_configs import lora_config, sft_config

log = logging.getLogger(__name__)


def run_sft(
    cfg: DomainConfig,
    recipe: Recipe,
    output: str | Path | None = None,
    resume: bool = False,
    retriever: Retriever | None = None,
    save: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Train, save <run>/adapter (or model) unless `save` is False, and return (run dir, metrics)."""
    from trl import SFTTrainer

    ref = base_model_ref(cfg, recipe)
    tokenizer = load_tokenizer(ref)
    chats, report = build_sft_chats(cfg, recipe, tokenizer, retriever)
    run = start_run(cfg, recipe, output, report)
    model = load_model(ref, recipe.train)
    is_peft = recipe.train.method != "full"
    trainer = SFTTrainer(
        model=model,
        args=sft_config(recipe.train, run / "checkpoints"),
        train_dataset=to_dataset(chats),
        processing_class=tokenizer,
        peft_config=lora_config(recipe.lora) if is_peft else None,
        callbacks=callbacks(run),
    )
    return run, train_and_save(trainer, run, tokenizer, resume, is_peft, save=save)
