"""The tuned generator's llama.cpp form: a peft LoRA written as a llama.cpp LoRA GGUF (models/lora_gguf.py) holds
the pairs and the scale llama.cpp expects, and applied at load it gives the logits of the same adapter merged into
the weights (edge/export/gguf_merge.py, checked against scale * B @ A in test_edge_export.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.generator_adapter import GeneratorAdapter, gguf_adapter
from models.lora_gguf import write_lora_gguf
from models.peft_lora import AdapterError, read_lora

DOWN = "base_model.model.model.layers.0.mlp.down_proj.lora_{}.weight"


def _down_proj_lora(folder: Path, rank: int = 2, alpha: float = 4.0, seed: int = 0) -> Path:
    """A LoRA on the MLP's output projection: the scripted GGUF's MLP writes nothing, so this changes the logits."""
    from safetensors.numpy import save_file
    from tiny_gguf import FFN, HIDDEN

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank, "lora_alpha": alpha}))
    save_file({DOWN.format("A"): rng.standard_normal((rank, FFN)).astype(np.float32),
               DOWN.format("B"): rng.standard_normal((HIDDEN, rank)).astype(np.float32)},
              str(folder / "adapter_model.safetensors"))
    return folder


def test_the_lora_gguf_holds_each_pair_and_the_peft_scale(tmp_path) -> None:
    from gguf import GGUFReader

    adapter = read_lora(_down_proj_lora(tmp_path / "adapter"))
    out = write_lora_gguf(adapter, tmp_path / "lora.gguf", "qwen2")
    reader = GGUFReader(str(out))
    fields = {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["general.architecture"] == "qwen2"
    tensors = {t.name: np.array(t.data) for t in reader.tensors}
    a, b = adapter.pairs["blk.0.ffn_down.weight"]
    np.testing.assert_array_equal(tensors["blk.0.ffn_down.weight.lora_a"], a)
    np.testing.assert_array_equal(tensors["blk.0.ffn_down.weight.lora_b"], b)
    # llama.cpp scales by alpha / r with r read from lora_a: alpha is written so that this is peft's scale (4 / 2)
    assert fields["adapter.lora.alpha"] / a.shape[0] == pytest.approx(adapter.scale) == pytest.approx(2.0)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_the_conversion_is_cached_by_the_weights_and_refuses_a_changed_adapter(tiny_gguf, tmp_path,
                                                                              monkeypatch) -> None:
    monkeypatch.setenv("DOSSIER_CACHE_DIR", str(tmp_path / "cache"))
    folder = _down_proj_lora(tmp_path / "adapter")
    adapter = read_lora(folder)
    first = gguf_adapter(GeneratorAdapter("legal", folder, adapter.sha256), tiny_gguf)
    assert first.is_file() and adapter.sha256 in str(first)
    stamp = first.stat().st_mtime_ns
    assert gguf_adapter(GeneratorAdapter("legal", folder, adapter.sha256), tiny_gguf).stat().st_mtime_ns == stamp
    with pytest.raises(AdapterError, match="changed"):
        gguf_adapter(GeneratorAdapter("legal", folder, "0" * 64), tiny_gguf)


def _scores(model: Path, lora: Path | None, prompt: list[int]) -> np.ndarray:
    from llama_cpp import Llama

    llm = Llama(model_path=str(model), lora_path=str(lora) if lora else None, n_ctx=64, logits_all=True,
                n_threads=1, verbose=False)
    llm.eval(prompt)
    return np.array(llm.scores[: len(prompt)])


def test_llama_cpp_applies_the_lora_gguf_as_the_merged_weights(tiny_gguf, tmp_path) -> None:
    pytest.importorskip("llama_cpp", reason="needs the llama.cpp wheel (make llama-cpp-wheel)")
    from edge.export.gguf_merge import merge_lora

    adapter = read_lora(_down_proj_lora(tmp_path / "adapter"))
    lora = write_lora_gguf(adapter, tmp_path / "lora.gguf", "qwen2")
    merged = tmp_path / "merged.gguf"
    merge_lora(tiny_gguf, adapter, merged)
    prompt = [1, 2, 3, 4, 5, 6]
    base, applied, baked = (_scores(tiny_gguf, None, prompt), _scores(tiny_gguf, lora, prompt),
                            _scores(merged, None, prompt))
    assert not np.allclose(base, applied, atol=1e-3)  # the adapter changes the model ...
    np.testing.assert_allclose(applied, baked, rtol=1e-3, atol=1e-3)  # ... exactly as merging it does
