"""Two LoRA adapters trained one on top of the other (DPO on the RAG-SFT model merged) folded into one adapter on
the base, exactly: W + s1 B1 A1 + s2 B2 A2 = W + [s1 B1 | s2 B2] @ [A1 ; A2], an adapter of rank r1 + r2 with scale
1 (lora_alpha = r). A projection only one of them adapts gets zeros in the other's rows, so every tensor has the
one rank peft and llama.cpp expect.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from models.peft_lora import CONFIG, GGUF_NAMES, WEIGHTS, AdapterError, LoraAdapter, read_lora

_GGUF = re.compile(r"^blk\.(\d+)\.(\w+)\.weight$")
_PEFT_MODULE = {gguf: peft for peft, gguf in GGUF_NAMES.items()}


def _peft_key(gguf_name: str, half: str) -> str:
    match = _GGUF.match(gguf_name)
    if match is None:
        raise AdapterError(f"cannot name {gguf_name!r} in peft terms")
    layer, module = match.groups()
    return f"base_model.model.model.layers.{layer}.{_PEFT_MODULE[module]}.lora_{half}.weight"


def _rank(adapter: LoraAdapter) -> int:
    return next(iter(adapter.pairs.values()))[0].shape[0]


def compose(first: LoraAdapter, second: LoraAdapter) -> dict[str, np.ndarray]:
    """peft tensor name -> float32 array of the adapter equal to applying `first`, then `second`."""
    r1, r2 = _rank(first), _rank(second)
    out: dict[str, np.ndarray] = {}
    for name in sorted(set(first.pairs) | set(second.pairs)):
        a_parts, b_parts = [], []
        for adapter, rank in ((first, r1), (second, r2)):
            if name in adapter.pairs:
                a, b = adapter.pairs[name]
                a_parts.append(a)
                b_parts.append(adapter.scale * b)
            else:
                other = (first if adapter is second else second).pairs[name]
                a_parts.append(np.zeros((rank, other[0].shape[1]), np.float32))
                b_parts.append(np.zeros((other[1].shape[0], rank), np.float32))
        out[_peft_key(name, "A")] = np.concatenate(a_parts, axis=0).astype(np.float32)
        out[_peft_key(name, "B")] = np.concatenate(b_parts, axis=1).astype(np.float32)
    return out


def write_composed(first_dir: Path, second_dir: Path, dest: Path) -> Path:
    """Write the composed adapter as a peft dir at `dest` (which must not exist yet)."""
    from safetensors.numpy import save_file

    first, second = read_lora(first_dir), read_lora(second_dir)
    configs = [json.loads((d / CONFIG).read_text(encoding="utf-8")) for d in (first_dir, second_dir)]
    rank = _rank(first) + _rank(second)
    layers = sorted({int(_GGUF.match(n).group(1)) for n in (*first.pairs, *second.pairs)})  # type: ignore[union-attr]
    modules = sorted({_PEFT_MODULE[_GGUF.match(n).group(2)].split(".")[-1]  # type: ignore[union-attr]
                      for n in (*first.pairs, *second.pairs)})
    config = {**configs[0], "r": rank, "lora_alpha": rank, "use_rslora": False, "target_modules": modules,
              "layers_to_transform": layers, "composed_from": [str(first_dir), str(second_dir)]}
    dest.mkdir(parents=True)
    (dest / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_file(compose(first, second), str(dest / WEIGHTS))
    return dest


def init_adapter_of(adapter_dir: Path) -> Path | None:
    """The adapter a training run merged into its base before training (`train.init_adapter` in the run's
    config.json, beside `adapter/`), else None. A relative path is the one the run was started with (from the
    project root, where the commands run); it must still exist."""
    run_dir = adapter_dir.parent if adapter_dir.name == "adapter" else adapter_dir
    config = run_dir / "config.json"
    if not config.is_file():
        return None
    init = json.loads(config.read_text(encoding="utf-8")).get("recipe", {}).get("train", {}).get("init_adapter")
    if not init:
        return None
    found = next((p for p in (Path(init), Path(__file__).resolve().parents[1] / init) if (p / CONFIG).is_file()), None)
    if found is None:
        raise AdapterError(f"{adapter_dir} was trained on top of {init} (train.init_adapter), which is gone: "
                           "alone it is a delta on a model nobody serves")
    return found


def stacked_adapter(adapter_dir: Path, cache: Path) -> Path:
    """What a run's adapter stands for: itself, or, when its run merged another adapter before training (DPO or a
    second SFT round on the shipped adapter), the two composed into one, written once into `cache` under a name
    that carries the run's name and both weight files' hashes. Applied alone, such an adapter is the base model
    plus a delta learned on another model: a silently wrong generator."""
    from core.hashing import sha256_file

    init = init_adapter_of(adapter_dir)
    if init is None:
        return adapter_dir
    run_name = (adapter_dir.parent if adapter_dir.name == "adapter" else adapter_dir).name
    key = sha256_file(init / WEIGHTS)[:12] + sha256_file(adapter_dir / WEIGHTS)[:12]
    dest = cache / f"{run_name}-stacked-{key}"
    if not (dest / WEIGHTS).is_file():
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        write_composed(init, adapter_dir, tmp)
        tmp.replace(dest)
    return dest
