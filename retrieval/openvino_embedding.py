"""OpenVINO inference of the same exported graph as the onnx backend (retrieval/onnx_embedding.py), on the CPU.

OpenVINO reads the ONNX file itself (no optimum-intel, which would pull its own transformers pin) and compiles it
for this CPU, in bf16 where the CPU computes in it (its own default there; `precision` says which) else fp32.
`int8` compresses the weights to int8 with NNCF (`nncf.compress_weights`, data-free; activations keep the
inference precision). Both IRs are saved beside the ONNX graph, so later loads skip the conversion.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from core.errors import MissingDependency
from retrieval.onnx_embedding import OnnxSentenceEncoder, Run, exported_graph

log = logging.getLogger(__name__)

IR_FILE = "openvino.xml"
INT8_IR_FILE = "openvino.int8.xml"
HINTS = {"bf16": "bf16", "fp32": "f32"}  # our precision -> OpenVINO's INFERENCE_PRECISION_HINT


def _openvino() -> Any:
    try:
        import openvino
    except ImportError as err:
        raise MissingDependency("openvino", extra="openvino") from err
    return openvino


def ir_model(onnx_path: Path, int8: bool) -> Path:
    """The OpenVINO IR (xml + bin) of the ONNX graph, made once; with `int8`, with int8-compressed weights."""
    ov = _openvino()
    path = onnx_path.with_name(INT8_IR_FILE if int8 else IR_FILE)
    if path.is_file():
        return path
    if int8:
        try:
            import nncf
        except ImportError as err:
            raise MissingDependency("nncf", extra="openvino") from err
        log.info("compressing %s to int8 weights with NNCF (once)", onnx_path)
        model = nncf.compress_weights(ov.Core().read_model(str(onnx_path)), mode=nncf.CompressWeightsMode.INT8_ASYM)
    else:
        log.info("converting %s to OpenVINO IR (once)", onnx_path)
        model = ov.Core().read_model(str(onnx_path))
    tmp = path.with_name(f".tmp-{path.name}")
    ov.save_model(model, str(tmp), compress_to_fp16=False)  # fp16 storage would round the fp32 weights
    tmp.with_suffix(".bin").replace(path.with_suffix(".bin"))
    tmp.replace(path)
    return path


def ov_run(path: Path, threads: int, precision: str) -> Run:
    """A compiled CPU model over the IR at `path`, as a `Run` (one infer request: one caller at a time)."""
    ov = _openvino()
    config = {"INFERENCE_NUM_THREADS": max(1, threads), "INFERENCE_PRECISION_HINT": HINTS[precision],
              "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()
    log.info("openvino: %s on CPU, inference precision %s, %d thread(s)", path.name,
             compiled.get_property("INFERENCE_PRECISION_HINT"), max(1, threads))
    return lambda feeds: request.infer(feeds)["sentence_embedding"].copy()


def openvino_encoder(st_model: Any, model_path: str, *, threads: int = 1, precision: str = "fp32",
                     int8: bool = False) -> OnnxSentenceEncoder:
    """An encoder over the model's exported graph, run by OpenVINO on the CPU."""
    _openvino()  # fail before a minutes-long export
    backend = "openvino-int8" if int8 else "openvino"
    path = ir_model(exported_graph(st_model, model_path, backend), int8)
    return OnnxSentenceEncoder.over(ov_run(path, threads, precision), st_model)
