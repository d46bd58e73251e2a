"""The bundle's generator GGUF: the domain's GGUF as shipped, or with a tuned LoRA adapter merged, optionally
requantised by llama.cpp; its chat template must still be inside afterwards.

`--adapter served` (the default) bundles what the service answers with: the domain's shipped adapter where its
`domain.toml` names one, else the base GGUF. `shipped` insists on that adapter (an error where the domain has none);
`none` is the base GGUF; anything else is a peft LoRA adapter dir (a training run's `adapter/`).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from core.hashing import sha256_file
from domains.config import DomainConfig
from edge.errors import ExportError
from edge.export.gguf_merge import merge_lora
from edge.export.quantize import check_output_quant, quantize_gguf
from edge.export.tied_output import TIED_KINDS, drop_tied_output
from models.peft_lora import AdapterError, LoraAdapter, read_lora

log = logging.getLogger(__name__)

AS_SHIPPED = "as shipped"  # the manifest's quant when the GGUF's bytes are the source's
ADAPTER_QUANT = "q4_k_m"  # a merge writes F32 tensors: without --quant they go back to the shipped type


def resolve_adapter(cfg: DomainConfig, choice: str) -> LoraAdapter | None:
    """`served` | `shipped` | `none` | a path -> the adapter, read and checked now (before anything is written)."""
    if choice == "served":
        choice = "shipped" if cfg.models.generator_adapter else "none"
    if choice == "none":
        return None
    if choice == "shipped":
        if not cfg.models.generator_adapter:  # what domain.toml names is what the domain ships, as when serving
            raise _no_shipped_adapter(cfg, "its domain.toml names none")
        shipped = cfg.root / cfg.models.generator_adapter
        if not shipped.is_dir():
            raise _no_shipped_adapter(cfg, f"{shipped} does not exist")
        return _read(shipped)
    return _read(Path(choice).expanduser())


def _no_shipped_adapter(cfg: DomainConfig, why: str) -> ExportError:
    recipe = f"training/configs/sft_{cfg.name}_rag.toml"
    if not (Path(__file__).resolve().parents[2] / recipe).is_file():
        recipe = "a RAG-SFT recipe like training/configs/sft_legal_rag.toml"
    return ExportError(f"domain {cfg.name} ships no tuned generator adapter ({why}). Train one with `dossier train "
                       f"sft --domain {cfg.name} --recipe {recipe}` and ship it with `dossier train ship --domain "
                       f"{cfg.name} --run RUN`, or export with --adapter RUN/adapter, or --adapter none for the base "
                       "model")


def _read(path: Path) -> LoraAdapter:
    try:
        return read_lora(path)
    except AdapterError as err:
        raise ExportError(str(err)) from err


def chat_template(gguf: Path) -> str:
    from models.gguf_convert import gguf_chat_template

    template = gguf_chat_template(gguf)
    if not template:
        raise ExportError(f"{gguf} carries no tokenizer.chat_template; the edge runner formats chats with it")
    return template


def export_generator(base: Path, dest: Path, adapter: LoraAdapter | None, quant: str | None, work: Path,
                     threads: int = 1, output_quant: str | None = None) -> dict[str, Any]:
    """Write the bundle's GGUF at `dest` (intermediate files in `work`); returns the manifest's record of it."""
    if output_quant is not None:
        output_quant = check_output_quant(output_quant, requantising=quant is not None or adapter is not None)
    tied = output_quant in TIED_KINDS
    dest.parent.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    source, merged = base, 0
    if adapter is not None:
        source = work / "merged-f32.gguf"
        merged = merge_lora(base, adapter, source)
        quant = quant or ADAPTER_QUANT
    written = work / "with-output.gguf" if tied else dest
    if quant is not None:
        quantize_gguf(source, written, quant, threads, None if tied else output_quant)
    elif not tied:
        shutil.copyfile(source, dest)
    untied: dict[str, Any] = {}
    if tied:
        untied = drop_tied_output(written if quant is not None else source, dest, output_quant)
        written.unlink(missing_ok=True)
    if source != base:
        source.unlink()
    template = chat_template(dest)
    return {
        "source": str(base), "source_sha256": sha256_file(base), "quant": quant or AS_SHIPPED,
        "output_quant": output_quant or "llama.cpp's choice", **untied,
        "adapter": None if adapter is None else {"path": str(adapter.path), "sha256": adapter.sha256,
                                                 "scale": adapter.scale, "tensors_merged": merged},
        "chat_template_chars": len(template),
    }
