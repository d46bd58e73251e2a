"""Where Dossier keeps what it fetches and builds: the model cache, per-domain ingest output and index versions.

$DOSSIER_CACHE_DIR (default ~/.cache/dossier) / models / <name>: fetched models (models.registry).
$DOSSIER_HOME (default: the cache dir) / domains / <domain> / {ingest, index, feedback}.
$DOSSIER_HOME / vectors: document vectors by content, shared by every domain and build (retrieval.vector_cache).
$DOSSIER_HOME / keys.json (or $DOSSIER_KEYS_FILE): the API keys, hashed (api.keys); $DOSSIER_HOME / audit.log.
Tests point DOSSIER_HOME at a temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where fetched models live: $DOSSIER_CACHE_DIR, else ~/.cache/dossier (the Makefile points it at .cache/)."""
    return Path(os.environ.get("DOSSIER_CACHE_DIR") or Path.home() / ".cache" / "dossier")


def data_home() -> Path:
    return Path(os.environ.get("DOSSIER_HOME") or cache_dir())


def vector_cache_dir() -> Path:
    return data_home() / "vectors"


def domain_workspace(domain: str) -> Path:
    return data_home() / "domains" / domain


def ingest_dir(domain: str) -> Path:
    """Holds chunks.sqlite (documents, chunks, duplicates and the manifest, see ingest.store) and report.json."""
    return domain_workspace(domain) / "ingest"


def index_root(domain: str) -> Path:
    """Holds one directory per index version and a `current` pointer."""
    return domain_workspace(domain) / "index"


def keys_file() -> Path:
    """The API key store: $DOSSIER_KEYS_FILE, else $DOSSIER_HOME/keys.json (`dossier keys`, `dossier serve`)."""
    return Path(os.environ.get("DOSSIER_KEYS_FILE") or data_home() / "keys.json")


def audit_log_file() -> Path:
    """Where `dossier serve` appends one JSON line per /v1 request (api.audit), unless told otherwise."""
    return data_home() / "audit.log"
