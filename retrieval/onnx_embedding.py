"""ONNX Runtime inference for a sentence-transformers model, exported once with `torch.onnx` and cached; fp32 or
with int8 weights (dynamic quantisation).

sentence-transformers' own `backend="onnx"` needs optimum-onnx, which pins transformers < 4.58 (this stack runs
transformers 5): so the module chain (transformer, pooling, dense layers) is exported as one graph
`(input_ids, attention_mask) -> sentence_embedding` and run with onnxruntime. Texts are sorted by length and
padded per batch, as sentence-transformers does. A query adapter (a Router after the chain: Dense(A) on the query
route) stays out of the graph and runs in torch on its output: one 768 x 768 matmul per query, and the domain
models that share a base share its export.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from core.errors import ConfigError, MissingDependency
from core.paths import cache_dir

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
# named after the recipe (MatMul weights, per channel, down-projections kept fp32): a changed recipe re-quantises
INT8_FILE = "model.int8-matmul-keepdown.onnx"
# MatMul only: quantising the Gather (Gemma's 262k x 768 token table, two thirds of its weights) saves disk, not time
INT8_OPS = ("MatMul",)
# transformer config keys that do not change the graph (and differ between copies of the same weights)
_CONFIG_NOISE = ("_name_or_path", "transformers_version", "use_cache", "architectures")

Run = Callable[[dict[str, np.ndarray]], np.ndarray]  # feeds (int64 (b, t) ids and mask) -> (b, dim) float32


def chain_and_router(st_model: Any) -> tuple[list[Any], Any | None]:
    """The modules that go into the graph, and the Router after them (None when the model has none)."""
    modules = list(st_model)
    for i, module in enumerate(modules):
        if type(module).__name__ == "Router":
            return modules[:i], module
    return modules, None


def export_key(st_model: Any, model_path: str) -> str:
    """What the graph computes: the document path's weights (sha256) and each exported module's class and config.
    A changed model re-exports; legal / medical / finance models (base + query adapter) share one key."""
    from retrieval.vector_cache import _memoised_sha256, document_weight_files

    model_dir = Path(model_path)
    parts: dict[str, Any] = {"name": model_dir.name} if not model_dir.is_dir() else {
        "weights": [_memoised_sha256(p) for p in document_weight_files(model_dir)]}
    chain, _ = chain_and_router(st_model)
    parts["modules"] = [type(m).__name__ for m in chain]
    parts["configs"] = [m.get_config_dict() for m in chain[1:] if hasattr(m, "get_config_dict")]
    config = getattr(getattr(st_model[0], "auto_model", None), "config", None)
    if config is not None:
        parts["transformer"] = {k: v for k, v in config.to_dict().items() if k not in _CONFIG_NOISE}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def onnx_cache_dir(st_model: Any, model_path: str) -> Path:
    """Where the export of the model at `model_path` lives: named by its architecture and `export_key`, not by the
    model's own name, so the models that share a document path share the folder."""
    config = getattr(getattr(st_model[0], "auto_model", None), "config", None)
    return cache_dir() / "onnx" / f"{getattr(config, 'model_type', 'model')}-{export_key(st_model, model_path)}"


def _torch_module(st_model: Any) -> Any:
    import torch

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.chain = torch.nn.ModuleList(chain_and_router(st_model)[0])

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            for module in self.chain:
                features = module(features)
            return features["sentence_embedding"]

    return SentenceEmbedding().eval()


def _export(module: Any, args: tuple, path: Path) -> None:
    """The TorchScript exporter first (seconds for a BERT); Gemma3's masks defeat its tracer ("unordered_map::at"),
    so the torch.export-based exporter (minutes) is the fallback."""
    import torch

    names = {"input_names": ["input_ids", "attention_mask"], "output_names": ["sentence_embedding"]}
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
            "sentence_embedding": {0: "batch"}}
    try:
        torch.onnx.export(module, args, str(path), dynamo=False, dynamic_axes=axes, opset_version=17, **names)
        return
    except Exception as err:  # noqa: BLE001 - any exporter failure: try the other exporter
        log.warning("TorchScript ONNX export failed (%s: %s); trying the torch.export-based exporter",
                    type(err).__name__, str(err)[:200])
    for stale in path.parent.iterdir():
        stale.unlink()
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    shapes = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}
    torch.onnx.export(module, args, str(path), dynamo=True, dynamic_shapes=shapes, opset_version=18, **names)


def export_onnx(st_model: Any, dest: Path) -> Path:
    """Export to `dest/model.onnx` atomically (temp dir, then rename); returns the file."""
    import torch

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-onnx-", dir=dest.parent))
    try:
        prepare = getattr(st_model, "preprocess", None) or st_model.tokenize  # renamed in sentence-transformers 6
        sample = prepare(["title: none | text: example", "a second, longer example text"])
        args = (sample["input_ids"], sample["attention_mask"])
        with torch.no_grad():
            _export(_torch_module(st_model.float()), args, tmp / ONNX_FILE)
        os.replace(tmp, dest) if not dest.exists() else shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest / ONNX_FILE


def exported_graph(st_model: Any, model_path: str, backend: str) -> Path:
    """The cached fp32 graph of the model, exported on first use; a failed export is a ConfigError."""
    dest = onnx_cache_dir(st_model, model_path)
    path = dest / ONNX_FILE
    if path.is_file():
        return path
    log.info("exporting %s to ONNX at %s (once)", model_path, dest)
    try:
        return export_onnx(st_model, dest)
    except Exception as err:  # the exporter raises many kinds; the user needs one actionable message
        raise ConfigError(f"embedding.backend = {backend!r}: exporting {model_path} to ONNX failed "
                          f"({type(err).__name__}: {err}); use backend = \"torch\"") from err


def down_projections(graph_path: Path) -> list[str]:
    """MatMul nodes that are an MLP's down-projection: a constant weight (K, N) with K > N, and the only MatMul
    reading its input (attention's k / v projections also narrow, but share their input with q). Their inputs
    (act(gate) * up) carry outlier activations that one uint8 scale per tensor flattens: on EmbeddingGemma keeping
    them fp32 lifts the int8 graph's cosine with fp32 from 0.980 to 0.995 (32 statute chunks) for about a third of
    the int8 speed-up."""
    import onnx

    graph = onnx.load(str(graph_path), load_external_data=False).graph  # shapes only, not the weights
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    matmuls = [node for node in graph.node if node.op_type == "MatMul"]
    readers = Counter(node.input[0] for node in matmuls)
    return [node.name for node in matmuls if len(shape := shapes.get(node.input[1], ())) == 2
            and shape[0] > shape[1] and readers[node.input[0]] == 1]


def quantised_graph(fp32_path: Path) -> Path:
    """`INT8_FILE` beside the fp32 graph: int8 weights (per output channel), activations quantised per batch
    at run time (ONNX Runtime dynamic quantisation), the MLP down-projections kept fp32. Made once, atomically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = fp32_path.with_name(INT8_FILE)
    if path.is_file():
        return path
    kept = down_projections(fp32_path)
    log.info("quantising %s to int8 weights (once; %d down-projections kept fp32)", fp32_path, len(kept))
    tmp = path.with_name(f".tmp-{os.getpid()}-{INT8_FILE}")
    try:
        quantize_dynamic(fp32_path, tmp, op_types_to_quantize=list(INT8_OPS), per_channel=True,
                         weight_type=QuantType.QInt8, nodes_to_exclude=kept)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def ort_run(path: Path, threads: int) -> Run:
    """An onnxruntime CPU session over the graph at `path`, as a `Run`."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise MissingDependency("onnxruntime", extra="onnx") from err
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(["sentence_embedding"], feeds)[0]


class OnnxSentenceEncoder:
    """`encode(texts, batch_size, progress, role) -> (n, dim) float32` (not normalised): a `Run` over the exported
    graph (onnxruntime here, OpenVINO in retrieval/openvino_embedding.py), then the model's Router, if any."""

    def __init__(self, run: Run, tokenizer: Any, max_length: int, router: Any = None) -> None:
        self.run = run
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.router = router

    @classmethod
    def for_model(cls, st_model: Any, model_path: str, threads: int = 1, int8: bool = False) -> OnnxSentenceEncoder:
        backend = "onnx-int8" if int8 else "onnx"
        try:
            import onnxruntime  # noqa: F401 - fail before a minutes-long export
        except ImportError as err:
            raise MissingDependency("onnxruntime", extra="onnx") from err
        path = exported_graph(st_model, model_path, backend)
        if int8:
            path = quantised_graph(path)
        return cls.over(ort_run(path, threads), st_model)

    @classmethod
    def over(cls, run: Run, st_model: Any) -> OnnxSentenceEncoder:
        return cls(run, st_model.tokenizer, int(st_model.max_seq_length), chain_and_router(st_model)[1])

    def encode(self, texts: list[str], batch_size: int, progress: bool = False, role: str = "document") -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out: list[np.ndarray] = [np.empty(0)] * len(texts)
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="embed (onnx)", unit="batch", disable=not progress):
            idx = order[start : start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="np")
            feeds = {"input_ids": enc["input_ids"].astype(np.int64),
                     "attention_mask": enc["attention_mask"].astype(np.int64)}
            vectors = self.run(feeds)  # (b, dim)
            for row, i in zip(vectors, idx, strict=True):
                out[i] = row
        return self._route(np.vstack(out).astype(np.float32), role)

    def _route(self, vectors: np.ndarray, role: str) -> np.ndarray:
        """The Router's route for `role` (a query adapter: Dense(A) + Normalize), in torch, on (n, dim) vectors."""
        if self.router is None:
            return vectors
        import torch

        with torch.inference_mode():
            routed = self.router({"sentence_embedding": torch.from_numpy(vectors)}, task=role)
        return routed["sentence_embedding"].float().numpy()
