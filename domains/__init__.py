"""Domain bundles: `load_domain("legal")` reads `domains/legal/domain.toml` into a frozen `DomainConfig`."""

from __future__ import annotations

import tomllib
from pathlib import Path

from core.errors import ConfigError
from domains.config import DomainConfig, domain_from_mapping

DOMAINS_DIR = Path(__file__).resolve().parent

__all__ = ["DomainConfig", "available_domains", "load_domain", "load_domain_file"]


def available_domains() -> list[str]:
    return sorted(p.parent.name for p in DOMAINS_DIR.glob("*/domain.toml"))


def load_domain(name: str) -> DomainConfig:
    path = DOMAINS_DIR / name / "domain.toml"
    if not path.is_file():
        raise ConfigError.invalid_choice("domain", name, available_domains())
    return load_domain_file(path)


def load_domain_file(path: Path) -> DomainConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    return domain_from_mapping(data, root=path.parent)
