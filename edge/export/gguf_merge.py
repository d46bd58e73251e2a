"""Merging a LoRA adapter into a GGUF: each adapted tensor is dequantised (gguf's reference dequantiser), gets
scale * B @ A added and is written as F32; every other tensor and every metadata field, the chat template
included, is copied byte for byte (`edge.export.gguf_rewrite`). llama.cpp's quantiser then brings the F32 tensors
to the bundle's type (`edge.export.quantize`), leaving the copied ones as they are.

The base here is the shipped Q4_K_M file, so a merged tensor is quantised twice (Q4_K_M -> F32 + delta -> Q4_K_M):
the cost of having no full-precision original of the weights.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge.errors import ExportError
from edge.export.gguf_rewrite import rewrite_gguf
from models.peft_lora import LoraAdapter

log = logging.getLogger(__name__)


def merge_lora(base: Path, adapter: LoraAdapter, dest: Path) -> int:
    """Write `dest` = `base` with the adapter merged; returns the number of tensors changed."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(base))
    tensors = {t.name: t for t in reader.tensors}
    merged: dict[str, np.ndarray] = {}
    for name in adapter.pairs:
        if name not in tensors:
            raise ExportError(f"adapter {adapter.path} adapts {name}, which {base.name} does not have: it was "
                              "trained on another model")
        tensor = tensors[name]
        weight = dequantize(tensor.data, tensor.tensor_type).reshape([int(n) for n in reversed(tensor.shape)])
        delta = adapter.delta(name)
        if delta.shape != weight.shape:
            raise ExportError(f"adapter {adapter.path}: {name} is {delta.shape} in the adapter and {weight.shape} in "
                              f"{base.name}: it was trained on another model")
        merged[name] = (weight + delta).astype(np.float32)
    rewrite_gguf(base, dest, replaced=merged)
    log.info("merged %d LoRA tensors of %s into %s", len(merged), adapter.path, dest)
    return len(merged)
