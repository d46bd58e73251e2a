"""Greedy batch generation for evaluating a base model and a tuned one on the same prompts.

Training sits below `api`, so it does not use the service's generators: this is the plain transformers path,
left-padded batches sorted by length (less padding), bf16 by default.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.protocols import Message
from models.registry import resolve_model
from training.model_io import load_tokenizer, set_threads, torch_dtype

log = logging.getLogger(__name__)


def load_for_generation(base: str, weights: Path | None, precision: str = "bf16", threads: int = 1) -> tuple[Any, Any]:
    """(model, tokenizer): the base, or the base with a LoRA adapter folded in, or a full / merged model dir."""
    from transformers import AutoModelForCausalLM

    set_threads(threads)
    is_adapter = weights is not None and (weights / "adapter_config.json").is_file()
    path = str(weights) if weights is not None and not is_adapter else resolve_model(base)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(precision))
    if is_adapter:
        from peft import PeftModel

        # folding the adapter in keeps generation as fast as the base (no extra matmuls per layer)
        model = PeftModel.from_pretrained(model, str(weights)).merge_and_unload()
    tokenizer = load_tokenizer(str(weights) if weights is not None else base, padding_side="left")
    model.eval()
    log.info("generation model: %s%s", path, f" + {weights}" if is_adapter else "")
    return model, tokenizer


def generate_replies(
    model: Any, tokenizer: Any, chats: Sequence[Sequence[Message]], max_new_tokens: int = 32, batch_size: int = 8
) -> list[str]:
    """Greedy replies, in the order of `chats`."""
    import torch
    from tqdm import tqdm

    prompts = [
        tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in chat], tokenize=False,
                                      add_generation_prompt=True)
        for chat in chats
    ]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    replies: list[str] = [""] * len(prompts)
    for start in tqdm(range(0, len(order), batch_size), desc="generate", unit="batch"):
        batch = order[start : start + batch_size]
        enc = tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        new = out[:, enc["input_ids"].shape[1] :]  # (B, new tokens)
        for i, ids in zip(batch, new, strict=True):
            replies[i] = tokenizer.decode(ids, skip_special_tokens=True).strip()
    return replies
