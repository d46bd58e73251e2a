"""Online RL against our reward model (the PPO stage of RLHF).

trl 1.16 no longer ships PPOTrainer (nor an experimental PPO); its online-RL trainers are GRPO and RLOO. We use
trl's GRPOTrainer with our trained reward model (a sequence classifier, e.g. <reward run>/model) as its reward
function: for each prompt the policy samples `num_generations` completions, the reward model scores them, and
the group-relative advantage replaces PPO's value model. Built for a GPU machine; on CPU it runs as a two-step
smoke test on the tiny model (tests/training/test_ppo.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import ConfigError
from domains.config import DomainConfig
from models.registry import resolve_model
from training.args import Recipe
from training.generator.preferences import load_pairs, prompts_dataset
from training.model_io import load_model, load_tokenizer
from training.run_steps import base_model_ref, callbacks, start_run, train_and_save
from training.trl_configs import grpo_config, lora_config


def load_reward_model(ref: str, recipe: Recipe) -> tuple[Any, Any]:
    """(reward model, its tokenizer); a reward run dir means its merged model/."""
    if not ref:
        raise ConfigError("train.reward_model: name the reward model (a `dossier train reward` run's model/ dir)")
    path = Path(ref)
    if (path / "model" / "config.json").is_file():
        ref = str(path / "model")
    from transformers import AutoModelForSequenceClassification

    from training.model_io import torch_dtype

    model = AutoModelForSequenceClassification.from_pretrained(resolve_model(ref), num_labels=1,
                                                               dtype=torch_dtype(recipe.train.precision))
    tokenizer = load_tokenizer(ref, padding_side="left")
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer


def run_ppo(
    cfg: DomainConfig, recipe: Recipe, output: str | Path | None = None, resume: bool = False
) -> tuple[Path, dict[str, Any]]:
    from trl import GRPOTrainer

    ref = base_model_ref(cfg, recipe)
    tokenizer = load_tokenizer(ref, padding_side="left")
    pairs, report = load_pairs(cfg, recipe.data)  # prompts only: the policy writes its own answers
    reward_model, reward_tokenizer = load_reward_model(recipe.train.reward_model, recipe)
    run = start_run(cfg, recipe, output, report)
    is_peft = recipe.train.method != "full"
    trainer = GRPOTrainer(
        model=load_model(ref, recipe.train),
        reward_funcs=reward_model,
        args=grpo_config(recipe.train, run / "checkpoints"),
        train_dataset=prompts_dataset(pairs),
        processing_class=tokenizer,
        reward_processing_classes=reward_tokenizer,
        peft_config=lora_config(recipe.lora) if is_peft else None,
        callbacks=callbacks(run),
    )
    return run, train_and_save(trainer, run, tokenizer, resume, is_peft)
