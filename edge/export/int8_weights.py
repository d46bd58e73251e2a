"""An fp32 graph's weights stored as int8, computed in fp32: weight-only quantisation.

The product's int8 recipe (ONNX Runtime dynamic quantisation) also quantises each MatMul's *activations*, with one
scale per tensor chosen per batch. That is where its vectors move: the same graph gives a query cosine 0.994
between batch sizes of 8 and 16, and the bundle's evidence order differed from the full build's for about half of
the answer sets' questions (edge/README.md). Here only the stored weights are rounded: each large MatMul or Gemm
weight gets one scale per 32 inputs of each output (fp16), the token table one per row (a token's row is all a query
reads of it), and a `Cast` to fp32, a `Mul` by the scales (and a `Reshape` out of the blocks) rebuild the fp32
tensor. The rebuild reads initialisers only, so onnxruntime folds it when it builds the session: the file holds int8,
the session holds fp32 and computes as the fp32 graph does, on weights with a relative error of at most 1/254 of
their block's (row's) largest. The token table is the exception: it stays int8 in memory and the rows a query reads
are rebuilt after the lookup.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MIN_ELEMENTS = 65_536  # smaller tensors (norms, biases, shapes) stay fp32: not worth a node each
INT8_MAX = 127
# one scale per BLOCK consecutive inputs of each output, as llama.cpp's Q8_0 does: on EmbeddingGemma it halves the
# rounding's effect on query vectors against one scale per output (1 - cosine with fp32, median over 81 legal test
# questions: 0.00038 -> 0.00015) for 1/16 byte a weight (fp16 scales)
BLOCK = 32


def quantise_columns(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 of a float array with one scale per slice along `axis` (of a 2-D one, 0: per column, 1: per
    row); returns (int8 values, fp32 scales shaped to broadcast back)."""
    largest = np.max(np.abs(values), axis=axis, keepdims=True)
    scales = np.where(largest > 0, largest / INT8_MAX, 1.0).astype(np.float32)
    quantised = np.clip(np.rint(values / scales), -INT8_MAX, INT8_MAX).astype(np.int8)
    return quantised, scales


def quantise_blocks(values: np.ndarray, axis: int, block: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Symmetric int8 of a 2-D weight whose outputs run along the other axis, one scale per `block` consecutive
    entries along `axis` (0: a MatMul's (K, N), 1: a transposed Gemm's (N, K)): (int8 values, scales), both 3-D
    (a plain reshape of the weight, so no transpose), or None where `block` does not divide that axis."""
    if values.shape[axis] % block:
        return None
    rows, cols = values.shape
    grouped = values.reshape(rows // block, block, cols) if axis == 0 else values.reshape(rows, cols // block, block)
    return quantise_columns(grouped, axis + 1)


def store_int8(graph_in: Path, graph_out: Path, min_elements: int = MIN_ELEMENTS, block: int = BLOCK
               ) -> dict[str, int]:
    """Write `graph_in` (fp32, external data allowed) to `graph_out` as one file with each fp32 MatMul / Gemm weight
    (scales per `block` inputs; 0: per output) and Gather table (scales per row) of at least `min_elements` stored as
    int8; returns what was rewritten."""
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
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    folded, nodes = [], list(graph.node)
    stored_bytes = fp32_bytes = looked_up = 0
    for name, axis in sorted(targets.items()):
        init = initialisers.get(name)
        if (init is None or init.data_type != TensorProto.FLOAT or len(init.dims) != 2
                or int(np.prod(init.dims)) < min_elements):
            continue
        values = numpy_helper.to_array(init)
        lookup = all(_is_row_lookup(node, name) for node in readers[name])
        blocks = None if lookup or block <= 0 else quantise_blocks(values, axis, block)
        quantised, scales = blocks or quantise_columns(values, axis)
        if blocks is not None:
            # fp16 block scales relative to the tensor's largest (fp32): a block scale near fp16's smallest normal
            # (6e-5) would lose its precision; relative to the largest, only blocks 16,000 times smaller do
            unit = float(scales.max())
            scales = (scales / unit).astype(np.float16)
            graph.initializer.append(numpy_helper.from_array(np.array(unit, np.float32), f"{name}__unit"))
        init.CopyFrom(numpy_helper.from_array(quantised, f"{name}__int8"))
        graph.initializer.append(numpy_helper.from_array(scales, f"{name}__scale"))
        stored_bytes += quantised.nbytes + scales.nbytes
        fp32_bytes += values.nbytes
        if lookup:
            # a token table stays int8 in memory too: only the rows a query reads are rebuilt, on every run
            nodes = [new for node in nodes for new in (_row_lookup(node) if node in readers[name] else [node])]
            looked_up += 1
        else:
            folded.append((name, values.shape if blocks is not None else None))
    # the folded weights are node outputs now: shapes recorded for them earlier (the exporter's) would only conflict
    # with what onnxruntime infers
    kept_info = [info for info in graph.value_info if info.name not in {name for name, _ in folded}]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    rebuilds = []
    for name, shape in folded:
        if shape is None:
            rebuilds += _rebuild(name, name)
        else:  # blocks: their scales (fp16 x the fp32 unit), the weight rebuilt 3-D, then back to its own shape
            scale = f"{name}__block_scale"
            rebuilds += _rebuild(name, scale, f"{name}__scale", f"{name}__unit")
            graph.initializer.append(numpy_helper.from_array(np.array(shape, dtype=np.int64), f"{name}__shape"))
            rebuilds += [*_rebuild(name, f"{name}__blocks", f"{name}__int8", scale),
                         helper.make_node("Reshape", [f"{name}__blocks", f"{name}__shape"], [name],
                                          name=f"{name}__reshape")]
    # each folded rebuild reads initialisers only, so putting them first keeps the node list topologically sorted
    del graph.node[:]
    graph.node.extend(rebuilds + nodes)
    onnx.save(model, str(graph_out))
    tensors = len(folded) + looked_up
    log.info("%s: %d weight(s) stored as int8, computed in fp32 (%.1f -> %.1f MiB)", graph_out.name, tensors,
             fp32_bytes / 2**20, stored_bytes / 2**20)
    return {"tensors": tensors, "folded_at_load": len(folded), "fp32_bytes": fp32_bytes, "stored_bytes": stored_bytes}


def _rebuild(name: str, output: str, int8: str | None = None, scale: str | None = None) -> list[Any]:
    """Cast(`int8`, an int8 or fp16 tensor) * `scale` -> `output`, fp32."""
    from onnx import TensorProto, helper

    int8, scale = int8 or f"{name}__int8", scale or f"{name}__scale"
    return [helper.make_node("Cast", [int8], [f"{output}__fp32"], to=TensorProto.FLOAT, name=f"{output}__to_fp32"),
            helper.make_node("Mul", [f"{output}__fp32", scale], [output], name=f"{output}__rescale")]


def _is_row_lookup(node: Any, table: str) -> bool:
    return node.op_type == "Gather" and node.input[0] == table and _attribute(node, "axis") == 0


def _row_lookup(node: Any) -> list[Any]:
    """A Gather of fp32 rows as a Gather of int8 rows and of their scales, rebuilt to fp32 after the lookup."""
    from onnx import helper

    table, ids = node.input
    out = node.output[0]
    return [helper.make_node("Gather", [f"{table}__int8", ids], [f"{out}__rows"], name=f"{node.name}__int8"),
            helper.make_node("Gather", [f"{table}__scale", ids], [f"{out}__row_scales"], name=f"{node.name}__scales"),
            *_rebuild(table, out, f"{out}__rows", f"{out}__row_scales")]


def _attribute(node: Any, name: str) -> int:
    return next((int(attribute.i) for attribute in node.attribute if attribute.name == name), 0)
