"""GGUF -> a bf16 transformers directory, for training and in-process generation.

transformers loads a GGUF (dequantised to full precision) with `from_pretrained(dir, gguf_file=...)`, but the
model it returns keeps `config.quantization_config` and `save_pretrained` refuses it. So: load it, drop the
quantization config, build a fresh model from the config on the meta device (no random init, no second copy of
the weights), move the dequantised state dict into it as bf16, and save safetensors + tokenizer (with the chat
template from the GGUF) + generation config. Qwen2.5-0.5B: ~1 min, ~4 GB RAM peak, 1.26 GB on disk.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

MAX_SHARD = "20GB"  # one model.safetensors: the registry pins that one file
# What the upstream checkpoints' generation_config.json set and a GGUF does not carry (Qwen2.5-*-Instruct:
# stop on <|im_end|> or <|endoftext|>, repetition_penalty 1.1). Sampling stays off: callers choose it.
UPSTREAM_GENERATION = {"qwen2": {"eos_token_id": [151645, 151643], "repetition_penalty": 1.1}}


def convert_gguf(gguf_path: Path, out_dir: Path, dtype: str = "bfloat16") -> Path:
    """Write a transformers dir (config, model.safetensors, tokenizer, chat template) converted from a GGUF."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    torch_dtype = getattr(torch, dtype)
    src, name = str(gguf_path.parent), gguf_path.name
    log.info("loading %s (dequantising)", gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
    # dequantize=True: with the `kernels` package installed transformers would keep the weights packed
    unpack = GgufConfig(gguf_file=str(gguf_path), dequantize=True)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch_dtype, quantization_config=unpack)
    state = {key: tensor.to(torch_dtype) for key, tensor in loaded.state_dict().items()}
    config = loaded.config
    generation_config = loaded.generation_config
    del loaded
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch_dtype
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    fresh.load_state_dict(state, strict=True, assign=True)
    fresh.tie_weights()
    for key, value in UPSTREAM_GENERATION.get(config.model_type, {}).items():
        setattr(generation_config, key, value)
    fresh.generation_config = generation_config
    out_dir.mkdir(parents=True, exist_ok=True)
    fresh.save_pretrained(out_dir, safe_serialization=True, max_shard_size=MAX_SHARD)
    _save_tokenizer(tokenizer, gguf_path, out_dir)
    log.info("converted %s -> %s", gguf_path.name, out_dir)
    return out_dir


def _save_tokenizer(tokenizer: object, gguf_path: Path, out_dir: Path) -> None:
    """Keep the GGUF's chat template: transformers usually carries it over; if not, read it from the metadata."""
    if not getattr(tokenizer, "chat_template", None):
        template = gguf_chat_template(gguf_path)
        if template:
            tokenizer.chat_template = template
        else:
            log.warning("%s has no chat template", gguf_path)
    tokenizer.save_pretrained(out_dir)


def gguf_chat_template(gguf_path: Path) -> str | None:
    """`tokenizer.chat_template` from a GGUF's metadata, or None."""
    from gguf import GGUFReader

    field = GGUFReader(str(gguf_path)).fields.get("tokenizer.chat_template")
    if field is None:
        return None
    return bytes(field.parts[field.data[0]]).decode("utf-8")
