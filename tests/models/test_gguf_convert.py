"""GGUF -> bf16 transformers dir on the real Qwen2.5-Coder-0.5B GGUF (491 MB; ~1 min and ~3 GB RAM to convert)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from models.fetch import fetch
    from models.gguf_convert import convert_gguf

    gguf = fetch("qwen2.5-coder-0.5b-instruct-gguf").path / "model.gguf"  # a no-op when already fetched
    return gguf, convert_gguf(gguf, tmp_path_factory.mktemp("qwen") / "model")


def test_converted_weights_equal_the_gguf_dequantised_by_the_gguf_library(converted: tuple[Path, Path]) -> None:
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors import safe_open

    gguf, out = converted
    names = {"token_embd.weight": "model.embed_tokens.weight", "output.weight": "lm_head.weight",
             "blk.0.attn_q.weight": "model.layers.0.self_attn.q_proj.weight",
             "blk.0.attn_q.bias": "model.layers.0.self_attn.q_proj.bias",
             "blk.23.ffn_down.weight": "model.layers.23.mlp.down_proj.weight"}
    with safe_open(str(out / "model.safetensors"), "pt") as st:
        assert len(list(st.keys())) == 291  # 24 layers x 12 + embed, norm, lm_head
        for tensor in GGUFReader(str(gguf)).tensors:
            if tensor.name in names:
                ref = dequantize(tensor.data, tensor.tensor_type).reshape([int(n) for n in reversed(tensor.shape)])
                ours = st.get_tensor(names[tensor.name]).float().numpy()
                scale = float(np.abs(ref).max())
                assert np.abs(ref - ours).max() <= scale / 128, tensor.name  # bf16 keeps 8 bits of mantissa


def test_converted_dir_generates_chinese_with_its_chat_template(converted: tuple[Path, Path]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, out = converted
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.dtype == torch.bfloat16 and model.num_parameters() == 630_167_424
    messages = [{"role": "user", "content": "中国的首都是哪里？"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    assert tokenizer.decode(inputs["input_ids"][0]).endswith("<|im_start|>assistant\n")
    output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "北京" in answer
