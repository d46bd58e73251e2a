"""Writing a GGUF as a copy of another with some tensors replaced or left out: every metadata field (the chat
template included) and every other tensor is copied byte for byte through gguf's own reader and writer."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np


def rewrite_gguf(source: Path, dest: Path, replaced: Mapping[str, np.ndarray] | None = None,
                 dropped: Collection[str] = (), copied: Mapping[str, str] | None = None) -> None:
    """Write `dest` = `source` with `replaced` tensors written as F32 (F16 for a float16 array), `dropped` ones left
    out and each tensor named in `copied` written with the bytes and type of the tensor it maps to (same shape)."""
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, Keys

    replaced, copied = replaced or {}, copied or {}
    reader = GGUFReader(str(source))
    by_name = {t.name: t for t in reader.tensors}
    # (the name written, the tensor whose bytes and type it gets)
    kept = [(t.name, by_name[copied.get(t.name, t.name)]) for t in reader.tensors if t.name not in dropped]
    arch = bytes(reader.fields[Keys.General.ARCHITECTURE].parts[-1]).decode()
    writer = GGUFWriter(str(dest), arch)
    for field in reader.fields.values():
        if field.name == Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # GGUFWriter writes these itself
        sub_type = field.types[-1] if field.types[0] == GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub_type)
    for name, tensor in kept:
        if name in replaced:
            data = replaced[name]
            kind = GGMLQuantizationType.F16 if data.dtype == np.float16 else GGMLQuantizationType.F32
            writer.add_tensor_info(name, data.shape, data.dtype, data.nbytes, kind)
        else:
            writer.add_tensor_info(name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes,
                                   tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for name, tensor in kept:
        writer.write_tensor_data(replaced.get(name, tensor.data), tensor_endianess=reader.endianess)
    writer.close()
