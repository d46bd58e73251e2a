"""Merging a LoRA adapter into a GGUF: each adapted tensor is dequantised (gguf's reference dequantiser), gets
scale * B @ A added and is written as F32; every other tensor and every metadata field, the chat template
included, is copied byte for byte. llama.cpp's quantiser then brings the F32 tensors to the bundle's type
(`edge.export.quantize`), leaving the copied ones as they are.

The base here is the shipped Q4_K_M file, so a merged tensor is quantised twice (Q4_K_M -> F32 + delta -> Q4_K_M):
the cost of having no full-precision original of the weights.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge.errors import ExportError
from models.peft_lora import LoraAdapter

log = logging.getLogger(__name__)


def merge_lora(base: Path, adapter: LoraAdapter, dest: Path) -> int:
    """Write `dest` = `base` with the adapter merged; returns the number of tensors changed."""
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, Keys
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
    arch = bytes(reader.fields[Keys.General.ARCHITECTURE].parts[-1]).decode()
    writer = GGUFWriter(str(dest), arch)
    for field in reader.fields.values():
        if field.name == Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # GGUFWriter writes these itself
        sub_type = field.types[-1] if field.types[0] == GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub_type)
    for tensor in reader.tensors:
        if tensor.name in merged:
            data = merged[tensor.name]
            writer.add_tensor_info(tensor.name, data.shape, data.dtype, data.nbytes, GGMLQuantizationType.F32)
        else:
            writer.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes,
                                   tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(merged.get(tensor.name, tensor.data), tensor_endianess=reader.endianess)
    writer.close()
    log.info("merged %d LoRA tensors of %s into %s", len(merged), adapter.path, dest)
    return len(merged)
