"""Writing a GGUF as a copy of another with some tensors replaced or left out: every metadata field (the chat
template included) and every other tensor is copied byte for byte through gguf's own reader and writer."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np


def rewrite_gguf(source: Path, dest: Path, replaced: Mapping[str, np.ndarray] | None = None,
                 dropped: Collection[str] = ()) -> None:
    """Write `dest` = `source` with `replaced` tensors written as F32 and `dropped` ones left out."""
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, Keys

    replaced = replaced or {}
    reader = GGUFReader(str(source))
    kept = [t for t in reader.tensors if t.name not in dropped]
    arch = bytes(reader.fields[Keys.General.ARCHITECTURE].parts[-1]).decode()
    writer = GGUFWriter(str(dest), arch)
    for field in reader.fields.values():
        if field.name == Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # GGUFWriter writes these itself
        sub_type = field.types[-1] if field.types[0] == GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub_type)
    for tensor in kept:
        if tensor.name in replaced:
            data = replaced[tensor.name]
            writer.add_tensor_info(tensor.name, data.shape, data.dtype, data.nbytes, GGMLQuantizationType.F32)
        else:
            writer.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes,
                                   tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in kept:
        writer.write_tensor_data(replaced.get(tensor.name, tensor.data), tensor_endianess=reader.endianess)
    writer.close()
