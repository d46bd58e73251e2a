"""Errors with actionable messages. Every error Dossier raises on purpose is a `DossierError`."""

from __future__ import annotations

from collections.abc import Iterable


class DossierError(Exception):
    """Base class: something the user can fix, with a message that says how."""


class ConfigError(DossierError):
    """A configuration value is unknown or invalid."""

    @classmethod
    def invalid_choice(cls, where: str, value: object, choices: Iterable[str]) -> ConfigError:
        valid = ", ".join(sorted(choices))
        return cls(f"{where}: {value!r} is not valid; choose one of: {valid}")

    @classmethod
    def unknown_keys(cls, where: str, keys: Iterable[str], known: Iterable[str]) -> ConfigError:
        unknown = ", ".join(sorted(keys))
        valid = ", ".join(sorted(known))
        return cls(f"{where}: unknown key(s) {unknown}; valid keys are: {valid}")


class MissingDependency(DossierError):
    """An optional package is needed for this face of Dossier."""

    def __init__(self, package: str, extra: str, how: str = "") -> None:
        how = how or f"pip install 'dossier[{extra}]'"
        super().__init__(f"{package} is not installed; install it with: {how}")
        self.package = package
        self.extra = extra


class ModelNotFound(DossierError):
    """A model name resolves to nothing on disk."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(f"model {name!r} is not in the cache ({path}); fetch it with: dossier models fetch {name}")
        self.name = name


class ModelFetchError(DossierError):
    """Downloading, assembling or verifying a model failed; nothing half-written was kept."""


class IndexError_(DossierError):
    """An on-disk index is missing, corrupt, or was built with another embedder."""


class IngestError(DossierError):
    """One input could not be ingested; the batch records it and goes on."""


class RequestError(DossierError):
    """A request to the service is malformed (maps to a 4xx at the API edge)."""
