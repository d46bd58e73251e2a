"""Turn a TOML mapping into a frozen dataclass tree, rejecting unknown keys and invalid choices."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from core.errors import ConfigError

T = TypeVar("T")


def parse_section(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a table, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError.unknown_keys(where, unknown, fields)
    hints = typing.get_type_hints(cls)
    values = {name: _convert(hints[name], value, f"{where}: {name}") for name, value in data.items()}
    missing = [n for n, f in fields.items() if n not in values and _required(f)]
    if missing:
        raise ConfigError(f"{where}: missing required key(s): {', '.join(missing)}")
    return cls(**values)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _convert(hint: Any, value: Any, where: str) -> Any:  # noqa: C901 - one branch per annotation shape
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return parse_section(hint, value, where)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        choices = {str(member.value): member for member in hint}
        if not isinstance(value, str) or value not in choices:
            raise ConfigError.invalid_choice(where, value, choices)
        return choices[value]
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError.invalid_choice(where, value, [str(a) for a in get_args(hint)])
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        item = get_args(hint)[0]
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict) or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        return dict(value)
    if origin in (types.UnionType, typing.Union):
        return value
    if hint is Path:
        return Path(value)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, bool) and type(value) is not hint:
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
