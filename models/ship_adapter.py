"""Ship a trained generator adapter with its domain: a run's peft LoRA -> `domains/<d>/models/generator-lora/`
(weights in float16, half the size, the form every backend reads), its provenance beside it, and `domain.toml`'s
`[models] generator_adapter` / `generator_adapter_sha256` pointing at it.

The folder is written next to its final place and swapped in, so a stopped ship leaves the old adapter whole; the
pin is written last, so a domain never names weights it does not have.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from core.hashing import sha256_file
from models.lora_compose import init_adapter_of, write_composed
from models.peft_lora import CONFIG, KEY, WEIGHTS, AdapterError, read_safetensors

SHIPPED_DIR = "models/generator-lora"  # relative to the domain folder
PROVENANCE = "PROVENANCE.json"
RUN_FILES = ("config.json", "data_report.json", "metrics.json")  # what a training run says about itself


def _provenance(run: Path, command: str) -> dict[str, Any]:
    out: dict[str, Any] = {"run": str(run), "command": command}
    for name in RUN_FILES:
        if (run / name).is_file():
            out[name.removesuffix(".json")] = json.loads((run / name).read_text(encoding="utf-8"))
    return out


def _write_half(adapter_dir: Path, dest: Path) -> None:
    from safetensors.numpy import save_file

    tensors = read_safetensors(adapter_dir / WEIGHTS)
    stray = [k for k in tensors if not KEY.match(k)]
    if stray:
        raise AdapterError(f"adapter {adapter_dir}: {stray[0]!r} is not a LoRA A / B weight; only plain LoRA ships")
    save_file({k: v.astype(np.float16) for k, v in tensors.items()}, str(dest / WEIGHTS))


def pin_in_domain_toml(toml: Path, relative: str, sha256: str) -> None:
    """Set the two keys in the `[models]` table of `toml`, keeping every other line (and comment) as it is."""
    text = toml.read_text(encoding="utf-8")
    table = re.search(r"(?ms)^\[models\]\n(.*?)(?=^\[)", text)
    if table is None:
        raise AdapterError(f"{toml}: no [models] table to name the adapter in")
    body = re.sub(r"(?m)^generator_adapter(?:_sha256)?\s*=.*\n", "", table.group(1))
    body = body.rstrip("\n") + f'\ngenerator_adapter = "{relative}"\ngenerator_adapter_sha256 = "{sha256}"\n\n'
    toml.write_text(text[: table.start(1)] + body + text[table.end(1):], encoding="utf-8")


def ship_adapter(run: Path, domain_root: Path, command: str = "") -> tuple[Path, str]:
    """Ship `run`'s adapter (RUN/adapter, or RUN itself when it is the adapter dir) into `domain_root`; returns the
    shipped folder and the sha256 now pinned in its domain.toml."""
    adapter_dir = run / "adapter" if (run / "adapter" / CONFIG).is_file() else run
    if not (adapter_dir / CONFIG).is_file():
        raise AdapterError(f"{run}: no adapter_config.json in it or in its adapter/; pass a training run dir")
    final = domain_root / SHIPPED_DIR
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".generator-lora.", dir=final.parent))
    run_dir = adapter_dir.parent if adapter_dir.name == "adapter" else adapter_dir
    try:
        init = init_adapter_of(adapter_dir)
        if init is not None:  # trained on a merged adapter (DPO after SFT): ship both folded into one
            adapter_dir = write_composed(init, adapter_dir, tmp / "composed")
        shutil.copy2(adapter_dir / CONFIG, tmp / CONFIG)
        _write_half(adapter_dir, tmp)
        shutil.rmtree(tmp / "composed", ignore_errors=True)
        (tmp / PROVENANCE).write_text(json.dumps(_provenance(run_dir, command), ensure_ascii=False, indent=2) + "\n",
                                      encoding="utf-8")
        old = final.with_name(final.name + ".old")
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    sha256 = sha256_file(final / WEIGHTS)
    pin_in_domain_toml(domain_root / "domain.toml", SHIPPED_DIR, sha256)
    return final, sha256
