"""A peft LoRA adapter written as a llama.cpp LoRA GGUF, so the llama.cpp backend applies it at load time beside
the unchanged base GGUF (`Llama(lora_path=...)`), the form llama.cpp's own `convert_lora_to_gguf.py` writes.

Layout llama.cpp reads: `general.type = "adapter"`, `adapter.type = "lora"`, `adapter.lora.alpha`, and for each
adapted base tensor `blk.N.attn_q.weight` the pair `blk.N.attn_q.weight.lora_a` (numpy (r, in)) and `.lora_b`
((out, r)). llama.cpp scales B @ A by alpha / r, where r is read from lora_a; alpha is written as scale * r so
peft's scale (alpha / r, or alpha / sqrt(r) with rslora) comes out unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from models.peft_lora import AdapterError, LoraAdapter

ARCHITECTURE = "qwen2"  # the shipped generators' GGUF architecture; an adapter only loads onto its own


def write_lora_gguf(adapter: LoraAdapter, dest: Path, architecture: str = ARCHITECTURE) -> Path:
    """Write `dest` (via a temporary file renamed into place, so a stopped write leaves no half file)."""
    from gguf import GGUFWriter

    ranks = {a.shape[0] for a, _ in adapter.pairs.values()}
    if len(ranks) != 1:
        raise AdapterError(f"adapter {adapter.path}: LoRA ranks differ between tensors ({sorted(ranks)}); "
                           "llama.cpp reads one alpha for the whole adapter")
    rank = ranks.pop()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    writer = GGUFWriter(str(tmp), architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(adapter.scale * rank))
    for name, (a, b) in sorted(adapter.pairs.items()):
        writer.add_tensor(f"{name}.lora_a", np.ascontiguousarray(a, dtype=np.float32))
        writer.add_tensor(f"{name}.lora_b", np.ascontiguousarray(b, dtype=np.float32))
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    tmp.replace(dest)
    return dest
