"""`--output-quant tied | tied-table`: a model trained with tied embeddings (Qwen2.5 0.5B / 1.5B:
`tie_word_embeddings`) has one matrix for its token table and its output projection, yet its GGUF can carry it
twice: the shipped 0.5B has `token_embd.weight` in Q5_0 (89 MiB) and `output.weight` in Q8_0 (138 MiB), the same rows
up to quantisation noise. One copy is enough: llama.cpp's loader projects onto `token_embd` when `output.weight` is
absent.

- `tied` keeps the more precise copy (here the Q8_0 output projection, written as the token table): the output
  projection is the shipped file's; only the input embeddings move, from Q5_0 to Q8_0 (469 -> 379 MiB).
- `tied-table` keeps the token table as it is and drops the projection (469 -> 331 MiB): the projection falls to
  Q5_0. Measured on the medical test questions with the full build's retrieval, it turned 6 of 57 answers into a
  reply of citation markers alone (an abstention), `tied` none (edge/README.md).

Both halves are checked, never assumed: the rows of the two matrices must agree (an untied model's do not), and
llama.cpp must load the file without the copy.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ExportError
from edge.export.gguf_rewrite import rewrite_gguf

log = logging.getLogger(__name__)

TIED, TIED_TABLE = "tied", "tied-table"
TIED_KINDS = (TIED, TIED_TABLE)
OUTPUT, TOKEN_TABLE = "output.weight", "token_embd.weight"
SAMPLED_ROWS = 512
# Q5_0 against Q8_0 rows of Qwen2.5-0.5B agree at cosine >= 0.99; an untied model's rows are unrelated (~0)
LEAST_ROW_COSINE = 0.95


def drop_tied_output(source: Path, dest: Path, keep: str = TIED) -> dict[str, Any]:
    """Write `dest` = `source` with one copy of the tied matrix (`keep`: `tied` the more precise one, `tied-table`
    the token table), after checking that the two are copies; returns the manifest's record (the types, the bytes
    saved, the least row cosine)."""
    from gguf import GGUFReader

    tensors = {t.name: t for t in GGUFReader(str(source)).tensors}
    if OUTPUT not in tensors:
        raise ExportError(f"{source.name} has no {OUTPUT}: its output projection is already the token table")
    if TOKEN_TABLE not in tensors:
        raise ExportError(f"{source.name} has no {TOKEN_TABLE} to project onto; keep its output projection")
    output, table = tensors[OUTPUT], tensors[TOKEN_TABLE]
    if list(output.shape) != list(table.shape):
        raise ExportError(f"{source.name}: {OUTPUT} is {list(output.shape)} and {TOKEN_TABLE} {list(table.shape)}; "
                          "only a tied model's output projection can be left out")
    cosine = least_row_cosine(output, table)
    if cosine < LEAST_ROW_COSINE:
        raise ExportError(f"{source.name}: {OUTPUT} is not a copy of {TOKEN_TABLE} (least row cosine {cosine:.3f} "
                          f"< {LEAST_ROW_COSINE}): the model's embeddings are untied; use another --output-quant")
    # the same shape in more bytes is more bits a weight
    kept = output if keep == TIED and output.n_bytes > table.n_bytes else table
    dropped = table if kept is output else output
    rewrite_gguf(source, dest, dropped={OUTPUT}, copied={TOKEN_TABLE: kept.name} if kept is output else None)
    _check_loads(dest)
    log.info("%s: one copy of the tied matrix kept (%s, %s) as %s; %.0f MiB saved; least row cosine %.4f",
             source.name, kept.name, kept.tensor_type.name, TOKEN_TABLE, dropped.n_bytes / 2**20, cosine)
    return {"output_quant": keep, "output_type": kept.tensor_type.name, "kept": kept.name,
            "dropped_type": dropped.tensor_type.name, "dropped_bytes": int(dropped.n_bytes),
            "least_row_cosine": round(cosine, 4)}


def least_row_cosine(a: Any, b: Any, rows: int = SAMPLED_ROWS) -> float:
    """The least cosine between the same rows of two GGUF tensors, over `rows` rows spread through the vocabulary
    (rows that are zero in either, unused tokens, are skipped)."""
    from gguf.quants import dequantize

    picked = np.unique(np.linspace(0, len(a.data) - 1, rows).astype(int))
    x = dequantize(a.data[picked], a.tensor_type).reshape(len(picked), -1).astype(np.float64)
    y = dequantize(b.data[picked], b.tensor_type).reshape(len(picked), -1).astype(np.float64)
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    live = norms > 0
    if not live.any():
        return 0.0
    return float(((x * y).sum(1)[live] / norms[live]).min())


def _check_loads(gguf: Path) -> None:
    """llama.cpp must run the file: an architecture whose loader needs `output.weight` fails here, at export."""
    from generation.llama_cpp_build import select_build

    select_build()
    try:
        import llama_cpp
    except ImportError as err:
        from core.errors import MissingDependency

        raise MissingDependency("llama-cpp-python", extra="edge", how="make llama-cpp-wheel") from err
    try:
        model = llama_cpp.Llama(str(gguf), n_ctx=16, n_threads=1, verbose=False)
    except (ValueError, RuntimeError) as err:
        raise ExportError(f"llama.cpp cannot load {gguf.name} without {OUTPUT} ({err}): this architecture needs its "
                          "own output projection; use another --output-quant") from err
    model.close()
