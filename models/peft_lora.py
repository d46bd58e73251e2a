"""Reading a peft LoRA adapter of the generator (adapter_config.json + adapter_model.safetensors) without torch or
peft, checked before anything is written: a missing, corrupt or unsupported adapter is an `AdapterError` saying what
is wrong with it. The edge export merges it into a GGUF; the llama.cpp backend loads it as a GGUF LoRA
(models/lora_gguf.py).

delta W = scale * B @ A for each adapted projection, scale = lora_alpha / r (/ sqrt(r) with rslora): peft's LoRA.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import DossierError
from core.hashing import sha256_file

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
# peft module path (Qwen2 / Llama decoder layers) -> the GGUF tensor it adapts
GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down"}
KEY = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)"
                 r"\.lora_([AB])(?:\.default)?\.weight$")
_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


class AdapterError(DossierError):
    """A LoRA adapter that is missing, damaged or of a kind this code cannot apply."""


@dataclass(frozen=True, slots=True)
class LoraAdapter:
    path: Path
    scale: float
    pairs: dict[str, tuple[np.ndarray, np.ndarray]]  # GGUF tensor name -> (A (r, in), B (out, r)), float32
    sha256: str  # of the weights file

    def delta(self, name: str) -> np.ndarray:
        """(out, in) float32: what the adapter adds to the GGUF tensor `name`."""
        a, b = self.pairs[name]
        return (self.scale * (b @ a)).astype(np.float32)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """name -> float32 array of a safetensors file (F32 / F16 / BF16), or an AdapterError for a damaged file."""
    data = path.read_bytes()
    try:
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + length])
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, end = (8 + length + int(o) for o in info["data_offsets"])
            raw = np.frombuffer(data[start:end], dtype=_DTYPES[info["dtype"]])
            if info["dtype"] == "BF16":  # bf16 is the top half of a float32
                raw = (raw.astype(np.uint32) << 16).view(np.float32)
            out[name] = raw.astype(np.float32).reshape(info["shape"])
    except (struct.error, ValueError, KeyError, TypeError) as err:
        raise AdapterError(f"adapter weights {path} are damaged or not safetensors ({type(err).__name__}: {err}); "
                          "copy the adapter again from its training run") from err
    return out


def _config(path: Path) -> dict:
    try:
        config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise AdapterError(f"adapter {path}: no {CONFIG}; pass a peft LoRA adapter dir (a training run's "
                          "adapter/, with adapter_config.json and adapter_model.safetensors)") from err
    except ValueError as err:
        raise AdapterError(f"adapter {path}/{CONFIG} is not valid JSON ({err})") from err
    unsupported = [k for k in ("modules_to_save", "use_dora", "fan_in_fan_out") if config.get(k)]
    if config.get("peft_type", "LORA") != "LORA" or unsupported:
        raise AdapterError(f"adapter {path}: only plain LoRA merges into a GGUF here (found peft_type "
                          f"{config.get('peft_type')!r}{', with ' + ', '.join(unsupported) if unsupported else ''})")
    return config


def read_lora(path: Path) -> LoraAdapter:
    if not path.is_dir():
        raise AdapterError(f"adapter {path} does not exist or is not a folder")
    config = _config(path)
    if not (path / WEIGHTS).is_file():
        raise AdapterError(f"adapter {path}: no {WEIGHTS} (only safetensors adapters are read)")
    halves: dict[str, dict[str, np.ndarray]] = {}
    for key, tensor in read_safetensors(path / WEIGHTS).items():
        match = KEY.match(key)
        if match is None:
            raise AdapterError(f"adapter {path}: tensor {key!r} is not the LoRA A / B of a decoder attention or MLP "
                              "projection; the merge does not know where it goes")
        layer, module, half = match.groups()
        halves.setdefault(f"blk.{layer}.{GGUF_NAMES[module]}.weight", {})[half] = tensor
    pairs = {}
    for name, ab in halves.items():
        if set(ab) != {"A", "B"} or ab["A"].shape[0] != ab["B"].shape[1]:
            raise AdapterError(f"adapter {path}: {name} has LoRA halves {sorted(ab)} of shapes "
                              f"{[v.shape for v in ab.values()]}; it is incomplete or damaged")
        pairs[name] = (ab["A"], ab["B"])
    if not pairs:
        raise AdapterError(f"adapter {path}: {WEIGHTS} holds no LoRA weights")
    rank, alpha = int(config.get("r", 8)), float(config.get("lora_alpha", 8))
    scale = alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)
    return LoraAdapter(path, scale, pairs, sha256_file(path / WEIGHTS))
