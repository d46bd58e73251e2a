"""The manifest of one index version: what built it and a sha256 per file, checked when the index is loaded."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import IndexError_
from core.hashing import sha256_file

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class EmbedderInfo:
    name: str  # the model reference from domain.toml (registry name, path or hub id)
    dim: int
    precision: str  # fp32 | bf16 (ONNX runs fp32)
    backend: str  # torch | onnx


@dataclass(frozen=True, slots=True)
class IndexManifest:
    domain: str
    version: str
    created: str  # ISO time, UTC
    embedder: EmbedderInfo
    index_kind: str  # flat | hnsw | ivfpq
    n_chunks: int
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    parent: str = ""  # the version an incremental update started from
    stats: dict[str, Any] = field(default_factory=dict)  # build timings and counts
    format: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True)

    @classmethod
    def read(cls, directory: Path) -> IndexManifest:
        path = directory / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["embedder"] = EmbedderInfo(**data["embedder"])
            return cls(**data)
        except FileNotFoundError as err:
            raise IndexError_(f"index {directory} has no {MANIFEST}: it is incomplete; rebuild it with "
                              "`dossier index build --rebuild`") from err
        except (ValueError, TypeError, KeyError) as err:
            raise IndexError_(f"index {directory}: unreadable {MANIFEST} ({err}); rebuild it with "
                              "`dossier index build --rebuild`") from err




def checksum_tree(directory: Path) -> dict[str, str]:
    """sha256 of every file under `directory` except the manifest, by relative posix path."""
    return {
        p.relative_to(directory).as_posix(): sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def verify_checksums(directory: Path, manifest: IndexManifest) -> None:
    """Raise IndexError_ naming the first file that is missing, unexpected or changed."""
    missing = sorted(r for r in manifest.files if not (directory / r).is_file())
    if missing:
        raise IndexError_(f"index {directory}: file(s) {', '.join(missing)} missing; rebuild with "
                          "`dossier index build --rebuild`")
    for relative, expected in sorted(manifest.files.items()):
        actual = sha256_file(directory / relative)
        if actual != expected:
            raise IndexError_(f"index {directory}: checksum mismatch for {relative} (expected sha256 "
                              f"{expected[:12]}…, found {actual[:12]}…): the file is corrupt or was changed; "
                              "rebuild with `dossier index build --rebuild`")
