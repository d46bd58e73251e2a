"""A domain's tuned generator: the peft LoRA adapter its bundle ships (`[models] generator_adapter`), checked
against its pinned sha256, and the form each backend loads — the peft dir itself for transformers and vLLM, a
llama.cpp LoRA GGUF (models/lora_gguf.py) built once into the model cache for the llama.cpp backend.

A missing or changed adapter is an error naming the command that fixes it; nothing falls back to the base model
silently (`--model base` asks for the base model explicitly).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from core.hashing import sha256_file
from core.paths import cache_dir
from domains.config import DomainConfig
from models.lora_gguf import write_lora_gguf
from models.peft_lora import WEIGHTS, AdapterError, read_lora

log = logging.getLogger(__name__)

GGUF_NAME = "adapter.gguf"


@dataclass(frozen=True, slots=True)
class GeneratorAdapter:
    domain: str
    path: Path  # the peft adapter dir
    sha256: str  # of its adapter_model.safetensors

    @property
    def name(self) -> str:
        """How traces, /v1/models and run names call it: `<domain>-rag-lora@<first 12 hex of the sha256>`."""
        return f"{self.domain}-rag-lora@{self.sha256[:12]}"


def _retrain_hint(cfg: DomainConfig) -> str:
    return (f"restore it with `git checkout -- domains/{cfg.name}/{cfg.models.generator_adapter}`, retrain it with "
            f"`dossier train sft --domain {cfg.name} --recipe training/configs/sft_{cfg.name}_rag.toml` (then "
            f"update generator_adapter_sha256), or answer with the base model: --model base")


def shipped_adapter(cfg: DomainConfig) -> GeneratorAdapter | None:
    """The domain's adapter, its weights checked against the pin; None when the domain ships none."""
    if not cfg.models.generator_adapter:
        return None
    path = cfg.path(cfg.models.generator_adapter)
    weights = path / WEIGHTS
    if not weights.is_file():
        raise AdapterError(f"domain {cfg.name}: the tuned generator adapter {weights} is missing; "
                           f"{_retrain_hint(cfg)}")
    digest = sha256_file(weights)
    if cfg.models.generator_adapter_sha256 and digest != cfg.models.generator_adapter_sha256:
        raise AdapterError(f"domain {cfg.name}: the tuned generator adapter {weights} has sha256 {digest[:12]}…, "
                           f"not the pinned {cfg.models.generator_adapter_sha256[:12]}… (changed or damaged); "
                           f"{_retrain_hint(cfg)}")
    return GeneratorAdapter(cfg.name, path, digest)


def adapter_from_dir(domain: str, path: Path) -> GeneratorAdapter:
    """A trained run's adapter dir (`--model RUN/adapter`), read to check it is a LoRA adapter at all."""
    adapter = read_lora(path)
    return GeneratorAdapter(domain, path, adapter.sha256)


def gguf_architecture(base_gguf: Path) -> str:
    from gguf import GGUFReader

    field = GGUFReader(str(base_gguf)).fields["general.architecture"]
    return bytes(field.parts[field.data[0]]).decode()


def gguf_adapter(adapter: GeneratorAdapter, base_gguf: Path) -> Path:
    """The llama.cpp form for `base_gguf`, built on first use into <cache>/models/generator-adapters/<sha256>/
    (keyed by the weights, so a retrained adapter never reuses a stale conversion)."""
    arch = gguf_architecture(base_gguf)
    dest = cache_dir() / "models" / "generator-adapters" / adapter.sha256 / f"{arch}-{GGUF_NAME}"
    if not dest.is_file():
        lora = read_lora(adapter.path)
        if lora.sha256 != adapter.sha256:
            raise AdapterError(f"adapter {adapter.path} changed while it was being converted; run the command again")
        write_lora_gguf(lora, dest, arch)
        log.info("converted %s to a llama.cpp LoRA GGUF: %s (%d tensors)", adapter.path, dest, 2 * len(lora.pairs))
    return dest
