"""`build_generator`: the one place a domain's `[generation] backend` becomes a generator class."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from core.errors import ConfigError, DossierError
from core.protocols import Generator
from domains.config import DomainConfig
from models.generator_adapter import gguf_adapter, shipped_adapter
from models.registry import MODELS, gguf_file, is_gguf_model, resolve_model

BACKENDS = ("transformers", "vllm", "openai-http", "llama-cpp", "openvino")
AUTO = "auto"  # openvino on a CPU with native bf16 (and OpenVINO installed), else llama-cpp: `auto_backend`
CHOICES = (*BACKENDS, AUTO)  # what `--backend` and domain.toml accept
BACKEND_ENV = "DOSSIER_GENERATOR_BACKEND"
OPENVINO_WEIGHTS_ENV = "DOSSIER_OPENVINO_WEIGHTS"  # int8 | int4 | f32, over [generation] openvino_weights
API_KEY_ENV = "DOSSIER_GENERATOR_API_KEY"  # bearer token for an OpenAI-compatible server, if it wants one


log = logging.getLogger(__name__)


def requested_backend(cfg: DomainConfig, override: str | None = None) -> str:
    """Flag > environment > domain.toml, as asked ("auto" included)."""
    backend = override or os.environ.get(BACKEND_ENV) or cfg.generation.backend
    if backend not in CHOICES:
        raise ConfigError.invalid_choice("generation backend", backend, CHOICES)
    return backend


def chosen_backend(cfg: DomainConfig, override: str | None = None) -> str:
    """The backend that runs: the requested one, "auto" resolved by the CPU."""
    backend = requested_backend(cfg, override)
    return auto_backend() if backend == AUTO else backend


def auto_backend(native_bf16: bool | None = None, openvino: bool | None = None) -> str:
    """The faster first token on this CPU: OpenVINO's bf16 prefill is 2.8x llama.cpp's where the CPU computes bf16
    natively (AVX512_BF16 / AMX: edge/README.md), while without it OpenVINO decodes at half llama.cpp's speed.
    The arguments stand in for the detection (tests)."""
    from core.hardware import cpu_has_native_bf16

    native_bf16 = cpu_has_native_bf16() if native_bf16 is None else native_bf16
    openvino = importlib.util.find_spec("openvino") is not None if openvino is None else openvino
    return "openvino" if native_bf16 and openvino else "llama-cpp"


def openvino_weights(cfg: DomainConfig) -> str:
    """Environment > domain.toml."""
    from generation.openvino_step import WEIGHTS

    weights = os.environ.get(OPENVINO_WEIGHTS_ENV) or cfg.generation.openvino_weights
    if weights not in WEIGHTS:
        raise ConfigError.invalid_choice(OPENVINO_WEIGHTS_ENV, weights, WEIGHTS)
    return weights


def check_model_form(ref: str, backend: str) -> None:
    """llama.cpp reads GGUF files, transformers and vLLM transformers dirs: a model of the other form is an error
    naming the way out, never a load failure deep inside the backend."""
    gguf = is_gguf_model(ref)
    if gguf is None:
        return
    if backend == "llama-cpp" and not gguf:
        raise ConfigError(f"{ref} is a transformers model, the llama-cpp backend loads a GGUF: answer with "
                          "--backend transformers, or convert it (llama.cpp's convert_hf_to_gguf.py)")
    if backend in ("transformers", "vllm", "openvino") and gguf:
        raise ConfigError(f"{ref} is a GGUF model, the {backend} backend loads a transformers dir: answer with "
                          "--backend llama-cpp, or name the registry model, whose converted form "
                          "`dossier models fetch` builds")


def build_generator(cfg: DomainConfig, backend: str | None = None) -> Generator:
    """A generator for `cfg`, not yet loaded (call its `load()` to warm it up)."""
    gen, models = cfg.generation, cfg.models
    chosen = chosen_backend(cfg, backend)
    if requested_backend(cfg, backend) == AUTO:
        log.info("generation backend auto: %s on this CPU", chosen)
    # the domain's tuned adapter, checked against its pin (an error naming the fix when missing or changed);
    # `--model base` clears it, an HTTP backend's server decides for itself
    adapter = shipped_adapter(cfg) if chosen != "openai-http" else None
    tuned = {"adapter_path": str(adapter.path), "adapter_name": adapter.name} if adapter else {}
    if chosen != "openai-http":
        check_model_form(models.generator_gguf if chosen == "llama-cpp" else models.generator, chosen)
    match chosen:
        case "transformers":
            from generation.transformers_gen import TransformersGenerator

            return TransformersGenerator(resolve_model(models.generator), threads=gen.threads, **tuned)
        case "llama-cpp":
            from generation.llama_cpp_gen import LlamaCppGenerator

            base = gguf_file(models.generator_gguf)
            lora = {"lora_path": str(gguf_adapter(adapter, Path(base))), "adapter_name": adapter.name} if adapter \
                else {}
            return LlamaCppGenerator(base, n_threads=gen.threads,
                                     n_threads_batch=gen.prefill_threads, **lora)
        case "openvino":
            from generation.openvino_gen import OpenVINOGenerator

            # one compiled graph runs prefill and decode: it gets the prefill threads, where the first token is made
            return OpenVINOGenerator(resolve_model(models.generator), threads=max(gen.threads, gen.prefill_threads),
                                     weights=openvino_weights(cfg), **tuned)
        case "openai-http":
            from generation.openai_http import OpenAIHttpGenerator

            return OpenAIHttpGenerator(gen.base_url, model=gen.api_model, api_key=os.environ.get(API_KEY_ENV, ""))
        case "vllm":
            from generation.vllm_gen import VllmGenerator

            return VllmGenerator(resolve_model(models.generator), **tuned)
        case other:
            raise ConfigError.invalid_choice("generation backend", other, BACKENDS)


def generator_identity(cfg: DomainConfig, backend: str | None = None) -> str:
    """What a reply cache keys on: the backend, the model's content and the adapter's pinned hash, so a tuned run
    never reads the base model's replies nor an older adapter's. A registry model is named by its pinned sha256
    (the fetch checked it), so a cache kept in the repository still answers after the model is fetched again on
    another machine (its files' times differ); any other model by its files' size and mtime (a retrained model
    misses). An HTTP backend's model need not be on this machine: its name stands for it."""
    chosen = chosen_backend(cfg, backend)
    ref = cfg.models.generator_gguf if chosen == "llama-cpp" else cfg.models.generator
    try:
        path = Path(resolve_model(ref))
    except DossierError:
        return f"{chosen}:{ref}"
    pinned = MODELS[ref].sha256 if ref in MODELS else ""
    if pinned:
        stamp = f"sha256:{pinned}"
    elif path.is_dir():
        stamp = ",".join(f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in sorted(path.glob("*"))
                         if p.is_file())
    else:
        stamp = f"{path.stat().st_size}:{int(path.stat().st_mtime)}"
    if cfg.models.generator_adapter:
        stamp += f"+lora:{shipped_adapter(cfg).sha256}"
    if chosen == "openvino":  # its replies follow the weights and the compute precision, which follows the CPU
        from core.hardware import resolve_precision

        stamp += f"+{openvino_weights(cfg)}+{resolve_precision('auto', 'cpu')}"
    return f"{chosen}:{ref}:{stamp}"
