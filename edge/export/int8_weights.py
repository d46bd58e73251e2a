"""An fp32 graph's weights stored as int8, computed in fp32: weight-only quantisation.

The product's int8 recipe (ONNX Runtime dynamic quantisation) also quantises each MatMul's *activations*, with one
scale per tensor chosen per batch. That is where its vectors move: the same graph gives a query cosine 0.994
between batch sizes of 8 and 16, and the bundle's evidence order differed from the full build's for about half of
the answer sets' questions (edge/README.md). Here only the stored weights are rounded: each large MatMul or Gemm
weight gets one scale per output column, the token table one per row (a token's row is all a query reads of it), and
a `Cast` to fp32 and a `Mul` by the scales rebuild the fp32 tensor. The rebuild reads initialisers only, so
onnxruntime folds it when it builds the session: the file holds int8, the session holds fp32 and computes as the
fp32 graph does, on weights with a relative error of at most 1/254 of their column's (row's) largest.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MIN_ELEMENTS = 65_536  # smaller tensors (norms, biases, shapes) stay fp32: not worth a node each
INT8_MAX = 127


def quantise_columns(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 of a 2-D float array with one scale per slice along `axis` (0: per column, 1: per row);
    returns (int8 values, fp32 scales shaped to broadcast back)."""
    largest = np.max(np.abs(values), axis=axis, keepdims=True)
    scales = np.where(largest > 0, largest / INT8_MAX, 1.0).astype(np.float32)
    quantised = np.clip(np.rint(values / scales), -INT8_MAX, INT8_MAX).astype(np.int8)
    return quantised, scales


def store_int8(graph_in: Path, graph_out: Path, min_elements: int = MIN_ELEMENTS) -> dict[str, int]:
    """Write `graph_in` (fp32, external data allowed) to `graph_out` as one file with each fp32 MatMul / Gemm weight
    and Gather table of at least `min_elements` stored as int8 behind Cast + Mul; returns what was rewritten."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(graph_in))
    graph = model.graph
    initialisers = {init.name: init for init in graph.initializer}
    # the axis the scales are taken along, so that there is one per output: MatMul reads a weight (K, N) as its
    # second input, one scale per column; Gemm the same, or (N, K) with transB, one per row (EmbeddingGemma's two
    # Dense projections); Gather reads a table (rows, dim) as its first input, one scale per row
    targets = {node.input[1]: 0 for node in graph.node if node.op_type == "MatMul" and len(node.input) == 2}
    targets |= {node.input[1]: 1 if _attribute(node, "transB") else 0 for node in graph.node if node.op_type == "Gemm"}
    targets |= {node.input[0]: 1 for node in graph.node if node.op_type == "Gather"}
    rebuild = []
    stored_bytes = fp32_bytes = 0
    for name, axis in sorted(targets.items()):
        init = initialisers.get(name)
        if (init is None or init.data_type != TensorProto.FLOAT or len(init.dims) != 2
                or int(np.prod(init.dims)) < min_elements):
            continue
        values = numpy_helper.to_array(init)
        quantised, scales = quantise_columns(values, axis)
        init.CopyFrom(numpy_helper.from_array(quantised, f"{name}__int8"))
        graph.initializer.append(numpy_helper.from_array(scales, f"{name}__scale"))
        rebuild += [helper.make_node("Cast", [f"{name}__int8"], [f"{name}__fp32"], to=TensorProto.FLOAT,
                                     name=f"{name}__to_fp32"),
                    helper.make_node("Mul", [f"{name}__fp32", f"{name}__scale"], [name], name=f"{name}__rescale")]
        stored_bytes += quantised.nbytes + scales.nbytes
        fp32_bytes += values.nbytes
    # a rewritten weight is now a node's output: shapes recorded for it earlier (the exporter's, or the token
    # table's before the vocabulary cut) would only conflict with what onnxruntime infers
    rewritten = {node.output[0] for node in rebuild if node.op_type == "Mul"}
    kept_info = [info for info in graph.value_info if info.name not in rewritten]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    # the rebuild reads initialisers only, so putting it first keeps the node list topologically sorted
    nodes = rebuild + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(graph_out))
    log.info("%s: %d weight(s) stored as int8, computed in fp32 (%.1f -> %.1f MiB)", graph_out.name, len(rebuild) // 2,
             fp32_bytes / 2**20, stored_bytes / 2**20)
    return {"tensors": len(rebuild) // 2, "fp32_bytes": fp32_bytes, "stored_bytes": stored_bytes}



def _attribute(node: Any, name: str) -> int:
    return next((int(attribute.i) for attribute in node.attribute if attribute.name == name), 0)
