"""Our recipe sections -> trl / peft configs: one function per target config, nothing else happens here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.args import LoraArgs, TrainArgs
from training.model_io import training_precision


def _common(args: TrainArgs, output_dir: Path) -> dict[str, Any]:
    """Arguments every trl config shares (they all extend transformers.TrainingArguments)."""
    import torch

    return {
        "output_dir": str(output_dir),
        "learning_rate": args.learning_rate,
        "num_train_epochs": args.epochs,
        "max_steps": args.max_steps,
        "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": args.grad_accum,
        "warmup_steps": args.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio of the total steps
        "lr_scheduler_type": args.lr_scheduler,
        "logging_steps": args.logging_steps,
        # "steps" also writes a checkpoint at the last step (transformers does, whatever save_steps says), so a run
        # that wants none (a memory measurement) must say "no"
        "save_strategy": "steps" if args.save_steps else "no",
        "save_steps": args.save_steps or 1,
        "save_total_limit": args.save_total_limit,
        "seed": args.seed,
        "bf16": training_precision(args.precision).value == "bf16",
        "use_cpu": not torch.cuda.is_available(),  # bf16 on CPU is torch.autocast("cpu")
        "gradient_checkpointing": args.gradient_checkpointing,
        "report_to": [],
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,
        "disable_tqdm": False,
    }


def sft_config(args: TrainArgs, output_dir: Path) -> Any:
    from trl import SFTConfig

    return SFTConfig(**_common(args, output_dir), max_length=args.max_length, packing=False)


def reward_config(args: TrainArgs, output_dir: Path) -> Any:
    from trl import RewardConfig

    return RewardConfig(**_common(args, output_dir), max_length=args.max_length)


def dpo_config(args: TrainArgs, output_dir: Path) -> Any:
    from trl import DPOConfig

    losses: dict[str, Any] = {}
    if args.sft_weight > 0:  # trl's multi-loss form: the sigmoid preference loss plus the chosen side's NLL
        losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, args.sft_weight]}
    return DPOConfig(**_common(args, output_dir), max_length=args.max_length, beta=args.beta, **losses)


def kto_config(args: TrainArgs, output_dir: Path) -> Any:
    from trl import KTOConfig

    return KTOConfig(**_common(args, output_dir), max_length=args.max_length, beta=args.beta)


def grpo_config(args: TrainArgs, output_dir: Path) -> Any:
    """Online RL (trl 1.16 removed PPOTrainer; GRPO is its online-RL trainer that scores samples with our reward
    model). generation_batch_size = batch_size * num_generations keeps every sampled group in one batch."""
    from trl import GRPOConfig

    common = _common(args, output_dir)
    common["per_device_train_batch_size"] = args.batch_size * args.num_generations
    return GRPOConfig(
        **common,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        beta=args.beta,
    )


def lora_config(args: LoraArgs, task_type: str = "CAUSAL_LM") -> Any:
    """peft.LoraConfig; task_type SEQ_CLS for the reward model (its score head is then trained too)."""
    from peft import LoraConfig

    return LoraConfig(
        r=args.r,
        lora_alpha=args.alpha,
        lora_dropout=args.dropout,
        target_modules=list(args.target_modules),
        task_type=task_type,
        layers_to_transform=list(args.layers) or None,
    )
