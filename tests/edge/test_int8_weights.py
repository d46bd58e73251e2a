"""Weight-only int8: the large weights are stored as int8 with one scale per MatMul column / token-table row; the
graph rebuilds the fp32 weights when onnxruntime loads it (the rebuild folds away), the token table's rows when a query
reads them, and computes in fp32."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _graph(path, table: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> None:
    """ids -> Gather(table) -> MatMul(weight) -> Add(bias) -> Gemm(projection, transB), as an embedder's steps are
    (EmbeddingGemma's Dense projections are Gemms with a transposed weight)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"]), helper.make_node("MatMul", ["e", "w"], ["h"]),
             helper.make_node("Add", ["h", "b"], ["a"]), helper.make_node("Gemm", ["a", "p"], ["y"], transB=1)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, PROJECTION.shape[0]])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(weight, "w"),
         numpy_helper.from_array(bias, "b"), numpy_helper.from_array(PROJECTION, "p")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


# (out, in) = (300, 320), read transposed by the Gemm; one row far smaller than the others
PROJECTION = (np.random.default_rng(1).standard_normal((300, 320)) * 0.05).astype(np.float32)
PROJECTION[5] *= 1e-3


def _session(path, optimised=None):
    options = ort.SessionOptions()
    if optimised is not None:
        options.optimized_model_filepath = str(optimised)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture
def parts() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    table = rng.standard_normal((600, 256)).astype(np.float32)
    table[7] *= 1e-3  # a row far smaller than the others: per-row scales keep its precision
    weight = (rng.standard_normal((256, 320)) * 0.05).astype(np.float32)
    weight[:, 3] *= 1e-3  # and a small column
    return table, weight, rng.standard_normal(320).astype(np.float32)


def test_weights_are_stored_int8_and_the_graph_computes_the_dequantised_product(parts, tmp_path) -> None:
    from edge.export.int8_weights import store_int8

    table, weight, bias = parts
    _graph(tmp_path / "fp32.onnx", table, weight, bias)
    report = store_int8(tmp_path / "fp32.onnx", tmp_path / "w8.onnx")
    assert report["tensors"] == 3 and report["folded_at_load"] == 2
    assert (tmp_path / "w8.onnx").stat().st_size < (tmp_path / "fp32.onnx").stat().st_size * 0.3
    stored = {init.name: init for init in onnx.load(str(tmp_path / "w8.onnx")).graph.initializer}
    assert stored["table__int8"].data_type == onnx.TensorProto.INT8
    assert stored["w__int8"].data_type == onnx.TensorProto.INT8
    # 32 inputs to a scale, along K: (K, N) -> (K / 32, 32, N) for the MatMul, (N, K) -> (N, K / 32, 32) for the
    # transposed Gemm; fp16 scales times one fp32 unit, the tensor's largest
    assert list(stored["w__scale"].dims) == [8, 1, 320] and list(stored["p__scale"].dims) == [300, 10, 1]
    assert stored["w__scale"].data_type == onnx.TensorProto.FLOAT16 and "table__unit" not in stored
    assert stored["b"].data_type == onnx.TensorProto.FLOAT  # small tensors stay as they were

    ids = np.array([1, 7, 599], dtype=np.int64)
    fp32 = _session(tmp_path / "fp32.onnx").run(None, {"ids": ids})[0]
    got = _session(tmp_path / "w8.onnx").run(None, {"ids": ids})[0]
    assert got.dtype == np.float32
    # exactly the product of the dequantised weights, in fp32
    def dequantised(name: str, shape: tuple[int, ...]) -> np.ndarray:
        scale = onnx.numpy_helper.to_array(stored[f"{name}__scale"]).astype(np.float32)
        if f"{name}__unit" in stored:
            scale = scale * onnx.numpy_helper.to_array(stored[f"{name}__unit"])
        return (onnx.numpy_helper.to_array(stored[f"{name}__int8"]).astype(np.float32) * scale).reshape(shape)

    rebuilt = {"table": dequantised("table", table.shape), "w": dequantised("w", weight.shape),
               "p": dequantised("p", PROJECTION.shape)}
    expected = (rebuilt["table"][ids] @ rebuilt["w"] + bias) @ rebuilt["p"].T
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    # and close to the fp32 graph: the rounding is the weights' alone
    cosine = np.sum(got * fp32, axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(fp32, axis=1)
    assert cosine.min() > 0.9999 and not np.array_equal(got, fp32)


def test_small_rows_and_columns_keep_their_own_precision(parts) -> None:
    from edge.export.int8_weights import quantise_columns

    table, weight, _ = parts
    for values, axis, small in ((table, 1, np.s_[7, :]), (weight, 0, np.s_[:, 3]), (PROJECTION, 1, np.s_[5, :])):
        quantised, scales = quantise_columns(values, axis)
        rebuilt = quantised.astype(np.float32) * scales
        relative = np.abs(rebuilt[small] - values[small]).max() / np.abs(values[small]).max()
        assert relative <= 0.5 / 127 + 1e-6  # half a step of its own scale, not of the tensor's largest value


def test_blocks_are_finer_than_one_scale_per_output_and_a_shape_they_do_not_divide_gets_one_per_output() -> None:
    from edge.export.int8_weights import quantise_blocks

    assert quantise_blocks(np.ones((100, 8), np.float32), 0, 32) is None  # 32 does not divide 100
    # blocks are finer than one scale per output: a block of small weights keeps its own precision
    column = np.concatenate([np.full(32, 1.0), np.full(32, 1e-3)]).astype(np.float32)[:, None]
    quantised, scales = quantise_blocks(column, 0, 32)
    rebuilt = (quantised.astype(np.float32) * scales).reshape(column.shape)
    np.testing.assert_allclose(rebuilt[32:], column[32:], rtol=1e-6)


def test_onnxruntime_folds_the_weights_at_load_and_the_token_table_stays_int8(parts, tmp_path) -> None:
    from edge.export.int8_weights import store_int8

    _graph(tmp_path / "fp32.onnx", *parts)
    assert store_int8(tmp_path / "fp32.onnx", tmp_path / "w8.onnx")["folded_at_load"] == 2
    _session(tmp_path / "w8.onnx", optimised=tmp_path / "optimised.onnx")
    optimised = onnx.load(str(tmp_path / "optimised.onnx")).graph
    stored = {init.name: init.data_type for init in optimised.initializer}
    # the MatMul / Gemm weights were rebuilt once, at load: the session holds them in fp32 and no Cast reads one
    assert not any(name.startswith(("w__", "p__")) for name in stored)
    assert not any(node.op_type == "Cast" and node.input[0] in stored and node.input[0] != "table__int8"
                   for node in optimised.node)
    # the token table is read a few rows a query: it stays int8 in memory, and only those rows are rebuilt
    assert stored["table__int8"] == onnx.TensorProto.INT8
