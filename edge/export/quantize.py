"""Requantising a GGUF with llama.cpp's own quantiser (`llama_model_quantize` through llama-cpp-python's ctypes API).

A tensor that already has the target type is copied as it is, so requantising a Q4_K_M file to q4_k_m only
quantises what a merge wrote in F32; from a Q4_K_M source a q8_0 file is bigger, never better than the source.

The output projection gets its own type (`--output-quant`): llama.cpp gives it Q6_K under every k-quant mix, and a
matrix whose rows are not a multiple of 256 (Qwen2.5-0.5B: 896) falls back to Q8_0, so in the shipped 0.5B GGUF
`output.weight` alone is 138 of 469 MiB. The 32-wide block types fit any Qwen width. `tied` / `tied-table` keep one
copy where the projection is a copy of the token table (`edge.export.tied_output`).
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

from core.errors import MissingDependency
from edge.errors import ExportError
from edge.export.tied_output import TIED_KINDS

log = logging.getLogger(__name__)

# --quant name -> llama.cpp's LLAMA_FTYPE_MOSTLY_* constant
QUANTS = {name: f"LLAMA_FTYPE_MOSTLY_{name.upper()}" for name in (
    "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s",
    "q5_k_m", "q6_k", "iq4_nl", "iq4_xs", "f16", "bf16")}


# --output-quant name -> llama.cpp's GGML_TYPE_* constant (block types of 32 values: they fit every row width)
OUTPUT_TYPES = {name: f"GGML_TYPE_{name.upper()}"
                for name in ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "iq4_nl", "f16")}


def check_output_quant(name: str, requantising: bool = True) -> str:
    """The normalised output-tensor type, or an ExportError listing the valid ones (or saying that --quant is
    needed: only a requantisation writes the output projection anew; `tied` needs none, it leaves it out)."""
    kind = name.lower()
    if kind in TIED_KINDS:
        return kind
    if kind not in OUTPUT_TYPES:
        raise ExportError(f"--output-quant {name!r} is not a block type the output projection can take; choose one "
                          f"of: {', '.join(OUTPUT_TYPES)}, or {' / '.join(TIED_KINDS)} (one copy of a tied matrix)")
    if not requantising:
        raise ExportError("--output-quant requantises the GGUF: give --quant too (e.g. --quant q4_0 --output-quant "
                          "q4_0)")
    return kind


def check_quant(name: str) -> str:
    """The normalised quant name, or an ExportError listing the valid ones."""
    quant = name.lower()
    if quant not in QUANTS:
        raise ExportError(f"--quant {name!r} is not a llama.cpp quantisation; choose one of: {', '.join(QUANTS)}")
    return quant


def quantize_gguf(source: Path, dest: Path, quant: str, threads: int = 1, output_quant: str | None = None) -> Path:
    """Write `dest` as `source` quantised to `quant` (tensors already of that type are copied), its output
    projection as `output_quant` where given (else llama.cpp's choice for `quant`)."""
    from generation.llama_cpp_build import select_build

    select_build()
    try:
        import llama_cpp
    except ImportError as err:
        raise MissingDependency("llama-cpp-python", extra="edge", how="make llama-cpp-wheel") from err
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANTS[check_quant(quant)])
    params.nthread = max(1, threads)
    params.allow_requantize = True  # the shipped GGUF is already Q4_K_M
    if output_quant is not None:
        params.output_tensor_type = getattr(llama_cpp, OUTPUT_TYPES[check_output_quant(output_quant)])
    log.info("quantising %s -> %s (%s, output %s, %d thread(s))", source, dest, quant, output_quant or "default",
             threads)
    code = llama_cpp.llama_model_quantize(str(source).encode(), str(dest).encode(), ctypes.byref(params))
    if code != 0 or not dest.is_file():
        raise ExportError(f"llama.cpp could not quantise {source} to {quant} (code {code}); its log above says why")
    return dest
