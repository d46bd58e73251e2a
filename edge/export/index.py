"""The domain's index in the bundle: one verified version (FAISS, BM25 state, chunk docstore, its own manifest)
copied as the product's store wrote it, the FAISS vectors optionally scalar-quantised to 8 bits per dimension
(SQ8: a quarter of the size; the scores move by about 1e-3, measured by bench/bench_edge_vs_full.py).

The docstore keeps each chunk's BM25 tokens so that `dossier index update` can copy unchanged chunks into a new
version without re-tokenising them; a bundle is never updated in place (it is re-exported), so they are dropped:
16 of the legal docstore's 52 MiB."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from contextlib import closing
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from retrieval.index_files import DOCSTORE_FILE, FAISS_FILE
from retrieval.manifest import MANIFEST, IndexManifest, checksum_tree
from retrieval.store import CURRENT, IndexStore, open_version_dir

log = logging.getLogger(__name__)


def source_version(location: Path) -> tuple[Path, IndexManifest]:
    """An index root (its `current` version) or one version dir, verified against its own checksums."""
    if (location / CURRENT).is_file():
        return IndexStore(location).open()
    return open_version_dir(location)


def scalar_quantise(path: Path) -> None:
    """Rewrite a flat FAISS index (IndexIDMap2 over IndexFlatIP) as IndexIDMap2 over an 8-bit scalar quantiser, with
    the same keys and inner-product metric."""
    import faiss

    index = faiss.read_index(str(path))
    inner = faiss.downcast_index(index.index)
    if not isinstance(inner, faiss.IndexFlat):
        raise ValueError(f"{path}: only a flat index is scalar-quantised here (found {type(inner).__name__})")
    vectors = inner.reconstruct_n(0, inner.ntotal)  # (n, d) float32, in id_map order
    keys = faiss.vector_to_array(index.id_map)
    quantiser = faiss.IndexScalarQuantizer(inner.d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    quantiser.train(vectors)
    out = faiss.IndexIDMap2(quantiser)
    out.add_with_ids(vectors, keys)
    faiss.write_index(out, str(path))


def drop_update_tokens(path: Path) -> None:
    """Empty the docstore's BM25 token column (read only by an index update) and give the space back."""
    # autocommit (isolation_level=None): sqlite refuses VACUUM inside a transaction
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("UPDATE chunks SET tokens = ''")
        db.execute("VACUUM")


def export_index(location: Path, dest: Path, sq8: bool = False) -> dict[str, Any]:
    """Copy the index version into `dest`; returns what the bundle manifest records about it."""
    source, manifest = source_version(location)
    shutil.copytree(source, dest)
    dest.chmod(0o755)  # a version dir is written private (mkdtemp); the bundle is for whoever copies it
    drop_update_tokens(dest / DOCSTORE_FILE)
    stats = {**manifest.stats, "docstore_update_tokens": False}
    if sq8:
        scalar_quantise(dest / FAISS_FILE)
        stats["faiss_sq8"] = True
    updated = replace(manifest, files=checksum_tree(dest), stats=stats)
    (dest / MANIFEST).write_text(updated.to_json(), encoding="utf-8")
    log.info("index %s (%d chunks) -> %s%s", source, manifest.n_chunks, dest, " (FAISS SQ8)" if sq8 else "")
    return {"source": str(source), "version": manifest.version, "n_chunks": manifest.n_chunks,
            "embedder": asdict(manifest.embedder), "faiss": "sq8" if sq8 else manifest.index_kind}
