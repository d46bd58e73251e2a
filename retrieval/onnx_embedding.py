"""ONNX Runtime inference for a sentence-transformers model, exported once with `torch.onnx` and cached.

sentence-transformers' own `backend="onnx"` needs optimum-onnx, which pins transformers < 4.58 (this stack runs
transformers 5): so the whole module chain (transformer, pooling, dense layers) is exported as one graph
`(input_ids, attention_mask) -> sentence_embedding` and run with onnxruntime. Texts are sorted by length and
padded per batch, as sentence-transformers does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from core.errors import ConfigError, MissingDependency
from core.paths import cache_dir

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"


def onnx_cache_dir(model_path: str) -> Path:
    """Where the export of the model at `model_path` lives (keyed by the resolved path)."""
    tag = hashlib.sha256(str(Path(model_path).resolve()).encode()).hexdigest()[:12]
    return cache_dir() / "onnx" / f"{Path(model_path).name}-{tag}"


def _torch_module(st_model: Any) -> Any:
    import torch

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st_model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.st({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]

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


class OnnxSentenceEncoder:
    """`encode(texts, batch_size, progress) -> (n, dim) float32` (not normalised) with onnxruntime on CPU."""

    def __init__(self, session: Any, tokenizer: Any, max_length: int) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def for_model(cls, st_model: Any, model_path: str, threads: int = 1) -> OnnxSentenceEncoder:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise MissingDependency("onnxruntime", extra="onnx") from err
        dest = onnx_cache_dir(model_path)
        path = dest / ONNX_FILE
        if not path.is_file():
            log.info("exporting %s to ONNX at %s (once)", model_path, dest)
            try:
                path = export_onnx(st_model, dest)
            except Exception as err:  # the exporter raises many kinds; the user needs one actionable message
                raise ConfigError(f"embedding.backend = \"onnx\": exporting {model_path} to ONNX failed "
                                  f"({type(err).__name__}: {err}); use backend = \"torch\"") from err
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return cls(session, st_model.tokenizer, int(st_model.max_seq_length))

    def encode(self, texts: list[str], batch_size: int, progress: bool = False) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out: list[np.ndarray] = [np.empty(0)] * len(texts)
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="embed (onnx)", unit="batch", disable=not progress):
            idx = order[start : start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="np")
            feeds = {"input_ids": enc["input_ids"].astype(np.int64),
                     "attention_mask": enc["attention_mask"].astype(np.int64)}
            (vectors,) = self.session.run(["sentence_embedding"], feeds)  # (b, dim)
            for row, i in zip(vectors, idx, strict=True):
                out[i] = row
        return np.vstack(out).astype(np.float32)
