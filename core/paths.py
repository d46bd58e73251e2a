"""Where Dossier keeps what it builds: per-domain ingest output and index versions.

$DOSSIER_HOME (default: the model cache dir, see core.models.cache_dir) / domains / <domain> / {ingest, index}.
Tests point DOSSIER_HOME at a temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.models import cache_dir


def data_home() -> Path:
    return Path(os.environ.get("DOSSIER_HOME") or cache_dir())


def domain_workspace(domain: str) -> Path:
    return data_home() / "domains" / domain


def ingest_dir(domain: str) -> Path:
    """Holds chunks.sqlite (documents, chunks, duplicates and the manifest, see ingest.store) and report.json."""
    return domain_workspace(domain) / "ingest"


def index_root(domain: str) -> Path:
    """Holds one directory per index version and a `current` pointer."""
    return domain_workspace(domain) / "index"
