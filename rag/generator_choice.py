"""`--model base | tuned | PATH`: which generator a command answers with, as a change to the domain config.

    (none)  what the domain serves: its tuned adapter when domain.toml names one, else the base model
    base    the untuned base model, whatever the domain ships
    tuned   the domain's shipped adapter; an error naming the training command when it ships none
    PATH    a peft LoRA adapter dir (a training run's adapter/) on the domain's base model, or on the registry
            generator its config names (the 1.5B recipes' adapters); a run trained on top of
            another adapter (`train.init_adapter`) answers with the two composed. Or another model: a merged
            transformers dir, a .gguf file or a dir holding one; the backend must be able to load it
            (rag.build_generation says which backend loads which form)
    NAME    a generator of the model registry, either form ("qwen2.5-coder-1.5b-instruct" or its "-gguf"): each
            backend loads the form it reads, keyed by the registry's pin
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from core.errors import ConfigError
from core.paths import cache_dir
from domains.config import DomainConfig
from models.lora_compose import stacked_adapter
from models.peft_lora import CONFIG as ADAPTER_CONFIG
from models.registry import MODELS, generator_forms

CHOICES = ("base", "tuned")


def with_generator(cfg: DomainConfig, choice: str | None) -> DomainConfig:
    models = cfg.models
    if not choice:
        return cfg
    if choice == "base":
        return replace(cfg, models=replace(models, generator_adapter="", generator_adapter_sha256=""))
    if choice == "tuned":
        if not models.generator_adapter:
            raise ConfigError(f"domain {cfg.name} ships no tuned generator: train one with `dossier train sft "
                              f"--domain {cfg.name} --recipe training/configs/sft_{cfg.name}_rag.toml` and pass "
                              "--model RUN/adapter, or answer with --model base")
        return cfg
    if choice in MODELS:
        transformers_form, gguf_form = generator_forms(choice)
        return replace(cfg, models=replace(models, generator=transformers_form, generator_gguf=gguf_form,
                                           generator_adapter="", generator_adapter_sha256=""))
    path = Path(choice).expanduser()
    if not (path.is_dir() or (path.is_file() and path.suffix == ".gguf")):
        raise ConfigError(f"--model {choice}: not base, tuned, a registry generator or a model path (an adapter "
                          "dir, a merged model dir, a .gguf file or a dir holding one)")
    path = path.resolve()
    if (path / ADAPTER_CONFIG).is_file():  # an adapter: on the model it was trained on, no pin to check
        trained_on = adapter_base(path)
        if trained_on is not None:  # a registry generator other than the domain's (the 1.5B recipes' adapters)
            transformers_form, gguf_form = generator_forms(trained_on)
            models = replace(models, generator=transformers_form, generator_gguf=gguf_form)
        # a run trained on top of another adapter answers with both composed, never with its delta alone
        path = stacked_adapter(path, cache_dir() / "models" / "generator-adapters")
        return replace(cfg, models=replace(models, generator_adapter=str(path), generator_adapter_sha256=""))
    # another model replaces the domain's in every backend's field: the llama-cpp backend reads generator_gguf, and
    # leaving the domain's there answered with the domain's model under the chosen model's name
    return replace(cfg, models=replace(models, generator=str(path), generator_gguf=str(path), generator_adapter="",
                                       generator_adapter_sha256=""))


def adapter_base(adapter_dir: Path) -> str | None:
    """The registry generator a peft adapter was trained on, by the last part of its `base_model_name_or_path`
    (training loads registry models from the cache, `<cache>/models/<name>`); None where it names none. An adapter
    of the 1.5B model put on the domain's 0.5B one fails deep inside the backend, or worse, converts."""
    try:
        base = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError):
        return None  # an unreadable config is the adapter loader's error to report
    name = Path(str(base or "")).name
    spec = MODELS.get(name)
    return name if spec is not None and spec.kind != "sentence-transformers" else None


def generator_label(cfg: DomainConfig, choice: str | None = None) -> str:
    """'base', the adapter's folder name — its training run's name for a run's `adapter/` — or, where `choice`
    (the --model that made `cfg`) named another model, that model's name: how run names and reports call the
    generator. Two models' runs must never share a run dir (the 1.5B generator's once overwrote the base run's)."""
    if cfg.models.generator_adapter:
        path = Path(cfg.models.generator_adapter)
        return path.parent.name if path.name == "adapter" else path.name
    if choice and choice not in CHOICES:
        path = Path(choice)
        return path.stem if path.suffix == ".gguf" else path.name
    return "base"
