"""A tuned embedder shipped as a query adapter: the adapter file format (float16 of A - I) and the assembly of
base model + adapter into a sentence-transformers dir. `dossier models fetch` builds a shipped adapter with it;
`dossier train embedder` (training/retriever/query_adapter.py fits A) writes one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_adapter_file(adapter: np.ndarray, path: Path) -> Path:
    """Ship form of an adapter: float16 of (A - I), compressed (~1.1 MB for 768 dims instead of 2.4 MB).
    A stays near I (identity regularisation; |A - I| < 0.1 in the shipped ones), so float16 of the difference
    is off by < 5e-5 on any entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    delta = (adapter - np.eye(adapter.shape[0], dtype=adapter.dtype)).astype(np.float16)
    np.savez_compressed(path, delta=delta)
    return path


def read_adapter_file(path: Path) -> np.ndarray:
    """(d, d) float32 A from a file written by `write_adapter_file`."""
    with np.load(path) as data:
        delta = data["delta"].astype(np.float32)
    if delta.ndim != 2 or delta.shape[0] != delta.shape[1]:
        raise ValueError(f"{path}: not a square query adapter (shape {delta.shape})")
    return np.eye(delta.shape[0], dtype=np.float32) + delta


def save_adapted_model(base_dir: str, adapter: np.ndarray, out_dir: Path) -> Path:
    """base model + Router(query: [Dense(A), Normalize], document: [Normalize]) saved to `out_dir`.
    encode_query applies A; encode_document (and plain encode) gives the base model's vectors."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Router

    # CPU on purpose: this only assembles modules and saves them (no compute); the saved model loads on any device
    base = SentenceTransformer(base_dir, device="cpu", local_files_only=True)
    dim = adapter.shape[0]
    dense = Dense(dim, dim, bias=False, activation_function=torch.nn.Identity())
    with torch.no_grad():
        dense.linear.weight.copy_(torch.from_numpy(adapter))
    router = Router.for_query_document(query_modules=[dense, Normalize()], document_modules=[Normalize()])
    model = SentenceTransformer(modules=[*base, router], device="cpu")
    model.prompts = dict(base.prompts)
    model.default_prompt_name = base.default_prompt_name
    model.save(str(out_dir))
    return out_dir


def build_adapted_model(base_dir: Path, adapter_file: str, out_dir: Path) -> Path:
    """`dossier models fetch` of a shipped tuned embedder: base model dir + the adapter shipped in the domains
    package (`adapter_file` relative to it) -> model dir. Returns the adapter file read."""
    from domains import DOMAINS_DIR

    path = DOMAINS_DIR / adapter_file
    if not path.is_file():
        raise OSError(f"the shipped adapter {path} is missing")
    save_adapted_model(str(base_dir), read_adapter_file(path), out_dir)
    return path
