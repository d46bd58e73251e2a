"""Vector packs: a domain's shipped corpus embedded once by the project and shipped in the domain bundle, so a fresh
clone builds its index in minutes instead of hours.

A pack is two files in `domains/<d>/vectors/`: `vectors.npz` (the text keys of `retrieval/vector_cache.py`, int8
codes and one float32 scale per dimension) and `pack.json` (the embedder identity, the sha256 of the npz, how it
was built and how much the quantisation costs). int8 with a per-dimension scale keeps every vector to cosine
> 0.999 of its float32 original at a quarter of the size (768 bytes a chunk for EmbeddingGemma).

A pack is trusted only after two checks on use (`open_pack` and `verify_sample`): its checksum, and a random
sample of its chunks re-embedded on the spot by the embedder at hand, which must agree with the pack (cosine ≥
0.99). A pack of another embedder, a corrupt or truncated file, or a sample that disagrees is refused with the
reason, and the build embeds what the pack would have covered. Texts the pack does not hold (a changed statute, a
user's own documents) are embedded as usual: the pack only ever answers for the exact text it was built from.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import IndexError_
from core.hashing import sha256_file
from retrieval.vector_cache import KEY_BYTES

log = logging.getLogger(__name__)

PACK_DIR = "vectors"  # inside the domain folder
PACK_FILE = "vectors.npz"
MANIFEST_FILE = "pack.json"
FORMAT = 1
SAMPLE_SIZE = 8
MIN_SAMPLE_COSINE = 0.99


class PackError(IndexError_):
    """A pack that cannot be used; the message says why and what happens instead."""


def quantise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float32 -> int8 codes (n, d) and a per-dimension scale (d,): code = round(x / scale)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scale = np.abs(vectors).max(axis=0) / 127.0 if len(vectors) else np.ones(vectors.shape[1], np.float32)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    codes = np.clip(np.rint(vectors / scale), -127, 127).astype(np.int8)
    return codes, scale


def dequantise(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """int8 codes -> float32 unit rows (the index searches by inner product, so rows are re-normalised)."""
    vectors = codes.astype(np.float32) * scale
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


@dataclass(frozen=True)
class VectorPack:
    directory: Path
    manifest: Mapping[str, Any]
    keys: np.ndarray  # (n, KEY_BYTES) uint8
    codes: np.ndarray  # (n, dim) int8
    scale: np.ndarray  # (dim,) float32

    @property
    def identity(self) -> str:
        return str(self.manifest["identity"])

    def __len__(self) -> int:
        return len(self.keys)

    def positions(self) -> dict[bytes, int]:
        return {bytes(k): i for i, k in enumerate(self.keys)}

    def vectors_at(self, rows: Sequence[int]) -> np.ndarray:
        return dequantise(self.codes[np.asarray(rows, dtype=np.int64)], self.scale)


def write_pack(directory: Path, keys: Sequence[bytes], vectors: np.ndarray, *, identity: str, embedder: str,
               extra: Mapping[str, Any] | None = None) -> Path:
    """Quantise and write a pack atomically (both files appear together, or the old ones stay)."""
    directory.mkdir(parents=True, exist_ok=True)
    order = sorted(range(len(keys)), key=keys.__getitem__)  # sorted by key: the same vectors give the same bytes
    key_array = np.frombuffer(b"".join(keys[i] for i in order), dtype=np.uint8).reshape(-1, KEY_BYTES)
    full = np.asarray(vectors, dtype=np.float32)[order]
    codes, scale = quantise(full)
    cosines = np.sum(dequantise(codes, scale) * full, axis=1) / np.maximum(np.linalg.norm(full, axis=1), 1e-12)
    tmp_npz = directory / f".{PACK_FILE}.{os.getpid()}.tmp"
    with tmp_npz.open("wb") as fh:
        np.savez_compressed(fh, keys=key_array, codes=codes, scale=scale)
    manifest = {
        "format": FORMAT, "identity": identity, "embedder": embedder, "n": len(keys), "dim": int(full.shape[1]),
        "quantisation": "int8, one scale per dimension", "sha256": sha256_file(tmp_npz),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quantisation_cosine": {"min": round(float(cosines.min()), 6), "mean": round(float(cosines.mean()), 6)},
        **(extra or {}),
    }
    tmp_json = directory / f".{MANIFEST_FILE}.{os.getpid()}.tmp"
    tmp_json.write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp_npz, directory / PACK_FILE)
    os.replace(tmp_json, directory / MANIFEST_FILE)
    log.info("vector pack %s: %d vectors, %.1f MB, quantisation cosine min %.5f", directory, len(keys),
             (directory / PACK_FILE).stat().st_size / 1e6, cosines.min())
    return directory


def open_pack(directory: Path, identity: str) -> VectorPack | None:
    """The verified pack in `directory` (None when there is none); PackError when it is there but unusable."""
    manifest_path, npz_path = directory / MANIFEST_FILE, directory / PACK_FILE
    if not manifest_path.exists() and not npz_path.exists():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PackError(f"vector pack {directory}: unreadable {MANIFEST_FILE} ({err})") from err
    if manifest.get("format") != FORMAT:
        raise PackError(f"vector pack {directory}: format {manifest.get('format')} (this version reads {FORMAT})")
    if manifest.get("identity") != identity:
        raise PackError(f"vector pack {directory} was built by another embedder ({manifest.get('embedder')}, "
                        f"identity {str(manifest.get('identity'))[:12]}…, this one is {identity[:12]}…)")
    if not npz_path.is_file():
        raise PackError(f"vector pack {directory}: {PACK_FILE} is missing")
    actual = sha256_file(npz_path)
    if actual != manifest.get("sha256"):
        raise PackError(f"vector pack {directory}: checksum mismatch for {PACK_FILE} (expected "
                        f"{str(manifest.get('sha256'))[:12]}…, found {actual[:12]}…): the file is corrupt, "
                        "truncated or was changed")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            keys, codes, scale = data["keys"], data["codes"], data["scale"]
    except (OSError, ValueError, KeyError) as err:
        raise PackError(f"vector pack {directory}: unreadable {PACK_FILE} ({err})") from err
    if keys.shape != (manifest["n"], KEY_BYTES) or codes.shape != (manifest["n"], manifest["dim"]):
        raise PackError(f"vector pack {directory}: shapes {keys.shape} / {codes.shape} do not match its manifest")
    return VectorPack(directory, manifest, keys, codes, scale.astype(np.float32))


def verify_sample(pack: VectorPack, rows: Sequence[int], texts: Sequence[str], embedder: Any,
                  *, seed: int | None = None, size: int = SAMPLE_SIZE) -> float:
    """Re-embed a random sample of (pack row, its text) pairs; PackError if any disagrees (cosine < 0.99).
    Returns the lowest cosine seen. The sample is drawn afresh on every use (a fixed one could be steered around);
    `seed` fixes it for tests."""
    if not rows:
        return 1.0
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    picks = rng.sample(range(len(rows)), min(size, len(rows)))
    fresh = np.asarray(embedder.embed([texts[i] for i in picks], role="document"), dtype=np.float32)
    packed = pack.vectors_at([rows[i] for i in picks])
    cosines = np.sum(fresh * packed, axis=1)
    worst = float(cosines.min())
    if worst < MIN_SAMPLE_COSINE:
        raise PackError(f"vector pack {pack.directory}: {int((cosines < MIN_SAMPLE_COSINE).sum())} of "
                        f"{len(picks)} re-embedded chunks disagree with it (lowest cosine {worst:.3f} < "
                        f"{MIN_SAMPLE_COSINE}): the pack does not match this embedder or was altered")
    log.info("vector pack %s: %d re-embedded chunks agree (lowest cosine %.4f)", pack.directory, len(picks), worst)
    return worst
