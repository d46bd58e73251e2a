"""The float weights an int8 graph keeps are stored as fp16 behind a Cast: the file shrinks by their half and the
graph computes the same up to fp16 rounding of the weights."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _graph(path, weight: np.ndarray, bias: np.ndarray) -> None:
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, weight.shape[1]])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _run(path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_a_large_matmul_weight_is_stored_half_size_and_computes_the_same(tmp_path) -> None:
    from edge.export.fp16_weights import store_fp16

    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((320, 256)) * 0.05).astype(np.float32)
    bias = rng.standard_normal(256).astype(np.float32)
    path = tmp_path / "g.onnx"
    _graph(path, weight, bias)
    x = rng.standard_normal((4, 320)).astype(np.float32)
    before, size = _run(path, x), path.stat().st_size
    saved = store_fp16(path)
    assert saved == weight.nbytes // 2 and path.stat().st_size < size - saved * 0.95
    after = _run(path, x)
    assert after.dtype == np.float32
    np.testing.assert_allclose(after, before, rtol=0, atol=5e-3)
    assert not np.array_equal(after, before)  # fp16 rounding is real: the weights did change
    types = {init.name: init.data_type for init in onnx.load(str(path)).graph.initializer}
    assert types == {"w__fp16": onnx.TensorProto.FLOAT16, "b": onnx.TensorProto.FLOAT}  # the small bias stays


def test_a_graph_without_large_float_weights_is_left_as_it_is(tmp_path) -> None:
    from edge.export.fp16_weights import store_fp16

    path = tmp_path / "g.onnx"
    _graph(path, np.ones((8, 4), np.float32), np.zeros(4, np.float32))
    before = path.read_bytes()
    assert store_fp16(path) == 0 and path.read_bytes() == before
