"""Direct preference optimisation with trl's DPOTrainer. With LoRA the reference model is the base itself
(adapters disabled), so no second copy of the weights is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domains.config import DomainConfig
from training.args import Recipe
from training.generator.preferences import load_pairs, pairs_dataset
from training.model_io import load_model, load_tokenizer
from training.run_steps import base_model_ref, callbacks, start_run, train_and_save
from training.trl_configs import dpo_config, lora_config


def run_dpo(
    cfg: DomainConfig, recipe: Recipe, output: str | Path | None = None, resume: bool = False
) -> tuple[Path, dict[str, Any]]:
    from trl import DPOTrainer

    ref = base_model_ref(cfg, recipe)
    tokenizer = load_tokenizer(ref)
    pairs, report = load_pairs(cfg, recipe.data)
    run = start_run(cfg, recipe, output, report)
    is_peft = recipe.train.method != "full"
    trainer = DPOTrainer(
        model=load_model(ref, recipe.train),
        ref_model=None,
        args=dpo_config(recipe.train, run / "checkpoints"),
        train_dataset=pairs_dataset(pairs),
        processing_class=tokenizer,
        peft_config=lora_config(recipe.lora) if is_peft else None,
        callbacks=callbacks(run),
    )
    return run, train_and_save(trainer, run, tokenizer, resume, is_peft)
