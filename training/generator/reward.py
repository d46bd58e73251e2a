"""Reward model: the domain model with a one-scalar score head, trained on preference pairs with trl's
RewardTrainer (Bradley-Terry loss). LoRA trains the adapters and the score head; the merged model is also saved
to <run>/model so online RL (training.generator.ppo) can load it as an ordinary sequence classifier."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from domains.config import DomainConfig
from training.args import Recipe
from training.generator.preferences import load_pairs, pairs_dataset
from training.model_io import load_model, load_tokenizer
from training.run_steps import base_model_ref, callbacks, start_run, train_and_save
from training.trl_configs import lora_config, reward_config

log = logging.getLogger(__name__)


def run_reward(
    cfg: DomainConfig, recipe: Recipe, output: str | Path | None = None, resume: bool = False
) -> tuple[Path, dict[str, Any]]:
    from trl import RewardTrainer

    ref = base_model_ref(cfg, recipe)
    tokenizer = load_tokenizer(ref)
    pairs, report = load_pairs(cfg, recipe.data)
    run = start_run(cfg, recipe, output, report)
    model = load_model(ref, recipe.train, head="score")
    is_peft = recipe.train.method != "full"
    trainer = RewardTrainer(
        model=model,
        args=reward_config(recipe.train, run / "checkpoints"),
        train_dataset=pairs_dataset(pairs),
        processing_class=tokenizer,
        peft_config=lora_config(recipe.lora, task_type="SEQ_CLS") if is_peft else None,
        callbacks=callbacks(run),
    )
    metrics = train_and_save(trainer, run, tokenizer, resume, is_peft)
    if is_peft:
        merged = trainer.model.merge_and_unload()
        merged.save_pretrained(str(run / "model"))
        tokenizer.save_pretrained(str(run / "model"))
    return run, metrics
