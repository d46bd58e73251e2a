"""`--model base | tuned | PATH`: which generator a command answers with, as a change to the domain config.

    (none)  what the domain serves: its tuned adapter when domain.toml names one, else the base model
    base    the untuned base model, whatever the domain ships
    tuned   the domain's shipped adapter; an error naming the training command when it ships none
    PATH    a peft LoRA adapter dir (a training run's adapter/) on the domain's base model, or a merged model dir; a
            run trained on top of another adapter (`train.init_adapter`) answers with the two composed
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from core.errors import ConfigError
from core.paths import cache_dir
from domains.config import DomainConfig
from models.lora_compose import stacked_adapter
from models.peft_lora import CONFIG as ADAPTER_CONFIG

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
    path = Path(choice).expanduser()
    if not path.is_dir():
        raise ConfigError(f"--model {choice}: not base, tuned or a directory (an adapter dir or a merged model dir)")
    path = path.resolve()
    if (path / ADAPTER_CONFIG).is_file():  # an adapter: the domain's base model with it, no pin to check
        # a run trained on top of another adapter answers with both composed, never with its delta alone
        path = stacked_adapter(path, cache_dir() / "models" / "generator-adapters")
        return replace(cfg, models=replace(models, generator_adapter=str(path), generator_adapter_sha256=""))
    return replace(cfg, models=replace(models, generator=str(path), generator_adapter="",
                                       generator_adapter_sha256=""))


def generator_label(cfg: DomainConfig) -> str:
    """'base', or the adapter's folder name — its training run's name for a run's `adapter/` — how run names and
    reports call the generator."""
    if not cfg.models.generator_adapter:
        return "base"
    path = Path(cfg.models.generator_adapter)
    return path.parent.name if path.name == "adapter" else path.name
