"""A recipe checked without training it (`dossier train plan`): the recipe validated, the model's shape and trainable
parameters counted on the meta device, the training data built and measured in tokens (how many examples the
recipe's `max_length` would cut), the optimizer steps, and the peak memory estimated for the device it will run
on. This is how the GPU recipes are dry-run checked on a CPU machine: everything but the arithmetic runs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core import hardware
from core.errors import ConfigError
from core.protocols import Retriever
from domains.config import DomainConfig
from training.args import Recipe
from training.memory_estimate import MemoryEstimate, estimate_memory
from training.model_io import load_tokenizer
from training.model_shape import ModelShape, model_shape
from training.run_steps import base_model_ref

log = logging.getLogger(__name__)
UNCUT = 1 << 20  # a max_length no example reaches: the data are measured before the recipe cuts them


@dataclass(frozen=True, slots=True)
class DataSize:
    examples: int
    dropped: dict[str, int]
    lengths: tuple[int, ...]  # tokens of each example, uncut (a preference pair: its longer side)
    sequences_per_example: int  # 2 where chosen and rejected run in the same step

    def percentile(self, q: float) -> int:
        ordered = sorted(self.lengths)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0

    def over(self, max_length: int) -> int:
        return sum(length > max_length for length in self.lengths)


@dataclass(frozen=True, slots=True)
class Plan:
    recipe: Recipe
    device: str
    precision: hardware.Choice
    processes: int
    model: ModelShape
    data: DataSize
    optimizer_steps: int
    batch_tokens: int
    memory: MemoryEstimate
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        train = self.recipe.train
        return {
            "recipe": self.recipe.name, "task": self.recipe.task, "method": train.method, "device": self.device,
            "precision": self.precision.value, "processes": self.processes, "model": self.model.as_dict(),
            "data": {"examples": self.data.examples, "dropped": self.data.dropped,
                     "tokens_p50": self.data.percentile(0.5), "tokens_p95": self.data.percentile(0.95),
                     "tokens_max": max(self.data.lengths, default=0),
                     "over_max_length": self.data.over(train.max_length), "max_length": train.max_length},
            "optimizer_steps": self.optimizer_steps, "batch_tokens": self.batch_tokens,
            "memory_mib": self.memory.as_dict(), "warnings": list(self.warnings),
        }


def _token_count(tokenizer: Any, chat: Sequence[dict[str, str]], generation_prompt: bool) -> int:
    return len(tokenizer.apply_chat_template(list(chat), tokenize=True, add_generation_prompt=generation_prompt,
                                             return_dict=False))


def _pair_lengths(tokenizer: Any, prompt: Sequence[tuple[str, str]], completions: Sequence[str]) -> int:
    chat = [{"role": role, "content": content} for role, content in prompt]
    prompt_tokens = _token_count(tokenizer, chat, generation_prompt=True)
    return prompt_tokens + max(len(tokenizer(c, add_special_tokens=False)["input_ids"]) + 1 for c in completions)


def data_size(cfg: DomainConfig, recipe: Recipe, tokenizer: Any, retriever: Retriever | None = None) -> DataSize:
    """The recipe's examples as its trainer would get them, measured before `max_length` cuts them."""
    from training.generator import preferences

    uncut = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, max_length=UNCUT))
    match recipe.task:
        case "sft":
            from training.generator.sft_data import build_sft_chats

            chats, report = build_sft_chats(cfg, uncut, tokenizer, retriever)
            return DataSize(report.kept, dict(report.dropped), tuple(len(c.input_ids) for c in chats), 1)
        case "dpo" | "reward":
            pairs, report = preferences.load_pairs(cfg, recipe.data)
            lengths = tuple(_pair_lengths(tokenizer, p.prompt, (p.chosen, p.rejected)) for p in pairs)
            return DataSize(report.kept, dict(report.dropped), lengths, 2)
        case "kto":
            rows, report = preferences.load_kto(cfg, recipe.data)
            lengths = tuple(_pair_lengths(tokenizer, r.prompt, (r.completion,)) for r in rows)
            return DataSize(len(rows), dict(report.dropped), lengths, 1)
        case _:  # ppo: the policy writes its own completions, num_generations per prompt
            pairs, report = preferences.load_pairs(cfg, recipe.data)
            lengths = tuple(_pair_lengths(tokenizer, p.prompt, ("",)) + recipe.train.max_completion_length
                            for p in pairs)
            return DataSize(report.kept, dict(report.dropped), lengths, recipe.train.num_generations)


def optimizer_steps(recipe: Recipe, examples: int, processes: int) -> int:
    train = recipe.train
    if train.max_steps > 0:
        return train.max_steps
    per_step = train.batch_size * train.grad_accum * processes
    return math.ceil(train.epochs * math.ceil(examples / per_step))


def target_precision(recipe: Recipe, device: str) -> hardware.Choice:
    """The precision the run will resolve on `device`. Planning for CUDA on a machine without one assumes a GPU
    with bf16 (Ampere or newer: A100, H100, H200, L4, RTX 30xx and up)."""
    native = None if device == "cpu" or hardware.cuda_available() else True
    return hardware.precision_choice(recipe.train.precision, device, native_bf16=native)


def _warnings(recipe: Recipe, device: str, data: DataSize, memory: MemoryEstimate, budget_mib: float) -> list[str]:
    train, out = recipe.train, []
    if train.method == "qlora" and device != "cuda":
        out.append("method 'qlora' needs a CUDA GPU (bitsandbytes 4-bit); on this device use 'lora'")
    if (cut := data.over(train.max_length)):
        out.append(f"{cut} of {data.examples} examples are longer than max_length {train.max_length} and will be cut")
    if device == "cpu":
        out.append("the memory estimate is sized on CUDA peaks; CPU training measured about twice it in RSS "
                   "(training/configs/README.md)")
    if budget_mib and memory.peak_mib > budget_mib:
        out.append(f"estimated peak {memory.peak_mib:,.0f} MiB is over the {budget_mib:,.0f} MiB budget: lower "
                   "batch_size (raise grad_accum), max_length, or turn on gradient_checkpointing")
    return out


def plan_recipe(
    cfg: DomainConfig, recipe: Recipe, device: str = "cuda", processes: int = 1, budget_mib: float = 0,
    retriever: Retriever | None = None,
) -> Plan:
    if device not in ("cpu", "cuda"):
        raise ConfigError.invalid_choice("device", device, ["cpu", "cuda"])
    if processes < 1:
        raise ConfigError(f"processes: at least 1, got {processes}")
    ref = base_model_ref(cfg, recipe)
    shape = model_shape(ref, recipe)
    tokenizer = load_tokenizer(ref)
    data = data_size(cfg, recipe, tokenizer, retriever)
    if data.examples == 0:
        raise ConfigError(f"recipe {recipe.name!r}: no usable training records ({data.dropped})")
    precision = target_precision(recipe, device)
    longest = min(recipe.train.max_length, max(data.lengths))  # a batch is padded to its longest example
    tokens = recipe.train.batch_size * data.sequences_per_example * longest
    memory = estimate_memory(shape, recipe.train.method, precision.value, tokens, recipe.train.gradient_checkpointing)
    steps = optimizer_steps(recipe, data.examples, processes)
    return Plan(recipe, device, precision, processes, shape, data, steps, tokens, memory,
                tuple(_warnings(recipe, device, data, memory, budget_mib)))


def format_plan(plan: Plan) -> str:
    d, m, train = plan.as_dict(), plan.model, plan.recipe.train
    data, mem = d["data"], d["memory_mib"]
    lines = [
        f"recipe     {d['recipe']} ({d['task']}, {train.method}) on {plan.device} x{plan.processes}, "
        f"{plan.precision.value} ({plan.precision.reason})",
        f"model      {m.ref}: {m.layers} layers, hidden {m.hidden}, {m.total_params / 1e6:,.0f}M parameters; "
        f"trainable {m.trainable_params / 1e6:,.2f}M ({m.trainable_params / m.total_params:.2%}), "
        f"backward from layer {m.lowest_trained_layer}",
        f"data       {data['examples']} examples, {sum(data['dropped'].values())} dropped {data['dropped'] or ''}; "
        f"tokens p50 {data['tokens_p50']}, p95 {data['tokens_p95']}, max {data['tokens_max']}; "
        f"{data['over_max_length']} over max_length {data['max_length']}",
        f"steps      {plan.optimizer_steps} optimizer steps (batch {train.batch_size} x accum {train.grad_accum} "
        f"x {plan.processes} process(es)); largest micro-batch {plan.batch_tokens} tokens",
        f"memory     estimated peak {mem['peak_mib']:,} MiB per process = weights {mem['weights_mib']:,} + "
        f"optimizer {mem['optimizer_mib']:,} + activations {mem['activations_mib']:,} + logits {mem['logits_mib']:,}"
        + (" (full: the larger of backward and optimizer step)" if train.method == "full" else ""),
    ]
    lines += [f"warning    {w}" for w in plan.warnings]
    return "\n".join(lines)

