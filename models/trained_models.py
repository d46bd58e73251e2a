"""Install a locally trained model into the shared model cache, atomically, with the COMPLETE_MARKER.

`<cache>/models/<name>/` then resolves by name (models.registry.resolve_model), so a domain.toml can say
`embedder = "embeddinggemma-300m-legal-qa"` or `reranker = "reranker-legal"`. The marker records what it was trained
from and how it scored, so `dossier models list`-style tools can show it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.paths import cache_dir
from models.registry import COMPLETE_MARKER


def install_trained_model(name: str, build: Callable[[Path], None], marker: Mapping[str, Any]) -> Path:
    """`build(tmp_dir)` writes the model; then the dir replaces `<cache>/models/<name>` and the marker is written
    last. A failure leaves any previous model of that name in place."""
    root = cache_dir() / "models"
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared
    try:
        build(tmp)
        data = {"name": name, "kind": "trained", "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **marker}
        (tmp / COMPLETE_MARKER).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        if final.exists():
            old = root / f".{name}.old-{time.time_ns()}"
            final.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
