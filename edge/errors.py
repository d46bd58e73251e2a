"""The edge's own errors: both are `DossierError`s whose message says what to do."""

from __future__ import annotations

from core.errors import DossierError


class BundleError(DossierError):
    """A bundle is missing, incomplete, or one of its files changed since it was exported."""


class ExportError(DossierError):
    """An export was asked for with input it cannot use (adapter, quant, disk); nothing was written."""
