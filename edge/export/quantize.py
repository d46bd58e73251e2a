"""Requantising a GGUF with llama.cpp's own quantiser (`llama_model_quantize` through llama-cpp-python's ctypes API).

A tensor that already has the target type is copied as it is, so requantising a Q4_K_M file to q4_k_m only
quantises what a merge wrote in F32; from a Q4_K_M source a q8_0 file is bigger, never better than the source.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

from core.errors import MissingDependency
from edge.errors import ExportError

log = logging.getLogger(__name__)

# --quant name -> llama.cpp's LLAMA_FTYPE_MOSTLY_* constant
QUANTS = {name: f"LLAMA_FTYPE_MOSTLY_{name.upper()}" for name in (
    "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s",
    "q5_k_m", "q6_k", "iq4_nl", "iq4_xs", "f16", "bf16")}


def check_quant(name: str) -> str:
    """The normalised quant name, or an ExportError listing the valid ones."""
    quant = name.lower()
    if quant not in QUANTS:
        raise ExportError(f"--quant {name!r} is not a llama.cpp quantisation; choose one of: {', '.join(QUANTS)}")
    return quant


def quantize_gguf(source: Path, dest: Path, quant: str, threads: int = 1) -> Path:
    """Write `dest` as `source` quantised to `quant` (tensors already of that type are copied)."""
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
    log.info("quantising %s -> %s (%s, %d thread(s))", source, dest, quant, threads)
    code = llama_cpp.llama_model_quantize(str(source).encode(), str(dest).encode(), ctypes.byref(params))
    if code != 0 or not dest.is_file():
        raise ExportError(f"llama.cpp could not quantise {source} to {quant} (code {code}); its log above says why")
    return dest
