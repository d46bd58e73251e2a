"""Document vectors kept by content: a vector is a pure function of (the embedder's document identity, the text).

Embedding is the slow part of every index build (26k statute articles take hours on two CPU cores), and most of
it repeats work already done: a rebuild after a threshold change, a second domain that ships the same statutes,
an index built again after a crash. So every vector the builder makes is stored here under `sha256(text)` in a
SQLite file per embedder identity (`$DOSSIER_HOME/vectors/<identity>.sqlite`), and a build embeds only the texts
no earlier build has seen. It is also how a killed build resumes: each slice is committed as soon
as it is embedded.

The identity (`document_identity`) is what makes a vector reusable: the sha256 of the weights that shape a
document vector (the transformer and the document path's dense layers), the document prompt, the truncation
length and the output dimension. Precision is left out on purpose: bf16 and fp32 vectors of the same weights agree
to cosine > 0.999, and a cache filled on one CPU must serve the next; so is the runtime when it computes the same
function within that tolerance: torch, ONNX fp32, and OpenVINO in the CPU's precision or with NNCF's int8 weights
(cosine with torch fp32 at least 0.9990 on every one of 128 statute chunks, recall@5 unchanged:
bench/bench_embed_backends.py), while ONNX Runtime's int8 (minimum 0.994) counts as another embedder. A query
adapter changes only queries, so the legal, medical and finance embedders share one cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.hashing import sha256_file

log = logging.getLogger(__name__)

KEY_BYTES = 16  # a truncated sha256: 128 bits keep collisions out of reach for any corpus
WEIGHTS_MEMO = ".dossier-weights.json"
# runtimes whose document vectors are interchangeable: every vector at cosine >= 0.999 of torch fp32's
INTERCHANGEABLE_BACKENDS = ("torch", "onnx", "openvino", "openvino-int8")


def text_key(text: str) -> bytes:
    """The cache key of a document text: exactly the text that is embedded (ingest has normalised it)."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:KEY_BYTES]


def _memoised_sha256(path: Path) -> str:
    """sha256 of a (large) weights file, remembered beside it by (size, mtime) so a build hashes it once."""
    memo_path = path.parent / WEIGHTS_MEMO
    stat = path.stat()
    stamp = f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    if stamp not in memo:
        memo[stamp] = sha256_file(path)
        try:
            memo_path.write_text(json.dumps(memo, indent=1), encoding="utf-8")
        except OSError:  # a read-only model dir still works; it is hashed again next time
            pass
    return str(memo[stamp])


def document_weight_files(model_dir: Path) -> list[Path]:
    """The weight files a document passes through, in order: the transformer's, then each module's on the document
    path (a Router's query routes are left out: the shipped query adapters live there)."""
    files = sorted(p for p in model_dir.glob("*.safetensors"))
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        modules = []
    for module in modules:
        sub = model_dir / str(module.get("path", ""))
        if not module.get("path") or not sub.is_dir():
            continue
        if str(module.get("type", "")).endswith("Router"):
            files += sorted(p for p in sub.glob("document_*/**/*.safetensors"))
        else:
            files += sorted(sub.glob("*.safetensors"))
    return files


def document_identity(embedder: Any) -> str:
    """A hex digest naming what an embedder's document vectors depend on (see the module docstring).

    An embedder may declare it (`identity` attribute: test embedders, remote ones); a sentence-transformers
    embedder is identified by its weight files, document prompt, truncation length and output dimension; anything
    else by its name and dimension.
    """
    declared = getattr(embedder, "identity", None)
    if isinstance(declared, str) and declared:
        return hashlib.sha256(declared.encode()).hexdigest()
    parts: dict[str, Any] = {"dim": int(embedder.dim)}
    model_dir = _model_dir(embedder)
    if model_dir is not None:
        parts["weights"] = [_memoised_sha256(p) for p in document_weight_files(model_dir)]
        parts["prompt"] = embedder.prompt_for("document") if hasattr(embedder, "prompt_for") else ""
        parts["max_seq_length"] = int(getattr(getattr(embedder, "cfg", None), "max_seq_length", 0) or 0)
    if not parts.get("weights"):
        parts["name"] = str(embedder.name)
    backend = str(getattr(embedder, "backend", "torch"))
    if backend not in INTERCHANGEABLE_BACKENDS:  # its vectors drift further: another function of the weights
        parts["backend"] = backend
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _model_dir(embedder: Any) -> Path | None:
    from models.registry import resolve_model

    try:
        path = Path(resolve_model(str(embedder.name)))
    except Exception:  # noqa: BLE001 - an unknown name is simply not a local model
        return None
    return path if path.is_dir() else None


class VectorCache:
    """One embedder identity's vectors, by text key. Safe for several processes (SQLite WAL, short transactions)."""

    def __init__(self, path: Path, identity: str, dim: int) -> None:
        self.path = Path(path)
        self.identity = identity
        self.dim = dim
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL) "
                         "WITHOUT ROWID")
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('identity', ?), ('dim', ?)", (identity, str(dim)))
        stored = dict(self._db.execute("SELECT k, v FROM meta"))
        if stored["identity"] != identity or int(stored["dim"]) != dim:
            raise ValueError(f"{self.path} holds vectors of another embedder (identity {stored['identity'][:12]}…, "
                             f"dim {stored['dim']}); it cannot serve identity {identity[:12]}…, dim {dim}")

    @classmethod
    def for_identity(cls, root: Path, identity: str, dim: int) -> VectorCache:
        return cls(Path(root) / f"{identity[:24]}.sqlite", identity, dim)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, np.ndarray]:
        """The cached vectors among `keys` (float32, dim,); missing keys are simply absent."""
        wanted = list(dict.fromkeys(keys))
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            for key, blob in self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", batch):
                found[bytes(key)] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store one slice in one transaction: after a crash a slice is either all there or not at all."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"expected {len(keys)} vectors of dim {self.dim}, got shape {vectors.shape}")
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                                 [(k, v.tobytes()) for k, v in zip(keys, vectors, strict=True)])

    def items(self) -> Iterable[tuple[bytes, np.ndarray]]:
        for key, blob in self._db.execute("SELECT key, vector FROM vectors ORDER BY key"):
            yield bytes(key), np.frombuffer(blob, dtype=np.float32)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> VectorCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

