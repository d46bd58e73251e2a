"""The float weights an int8 graph keeps, stored in fp16 and cast back to fp32 when the graph loads.

The int8 recipe keeps EmbeddingGemma's MLP down-projections in fp32 (their inputs carry outlier activations:
retrieval.onnx_embedding.down_projections): 24 matrices of 1152 x 768, 81 MiB of the small bundle's 215 MiB graph.
Stored as fp16 behind a `Cast` they take half the file; onnxruntime folds the cast when it builds the session, so
the graph computes in fp32 as before, on weights rounded to fp16 (11 significant bits: a relative error of at most
2^-11 per weight, far under what the int8 matrices beside them carry).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MIN_ELEMENTS = 65_536  # smaller tensors (norms, biases, shapes) are not worth a node each


def store_fp16(graph_path: Path, min_elements: int = MIN_ELEMENTS) -> int:
    """Rewrite the graph at `graph_path` with each fp32 MatMul weight of at least `min_elements` stored as fp16
    behind a Cast to fp32; returns the bytes saved."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(graph_path))
    graph = model.graph
    initialisers = {init.name: init for init in graph.initializer}
    weights = {node.input[1] for node in graph.node if node.op_type == "MatMul" and len(node.input) == 2}
    casts = []
    saved = 0
    for name in sorted(weights):
        init = initialisers.get(name)
        if init is None or init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            continue
        values = numpy_helper.to_array(init)
        stored = f"{name}__fp16"
        init.CopyFrom(numpy_helper.from_array(values.astype(np.float16), stored))
        casts.append(helper.make_node("Cast", [stored], [name], to=TensorProto.FLOAT, name=f"{name}__to_fp32"))
        saved += values.nbytes // 2
    if not casts:
        return 0
    # the casts read initialisers only, so putting them first keeps the node list topologically sorted
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(graph_path))
    log.info("%s: %d fp32 weight(s) stored as fp16 (%.1f MiB less)", graph_path.name, len(casts), saved / 2**20)
    return saved
