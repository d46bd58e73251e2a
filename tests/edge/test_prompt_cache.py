"""The llama.cpp prompt cache LlamaCppGenerator keeps by default: a prompt asked again answers the same (greedy),
from the saved state; 0 bytes turns it off."""

from __future__ import annotations

import pytest

from core.protocols import GenerationParams, Message

MESSAGES = [Message("system", "你是助理"), Message("user", "故意杀人罪判几年？")]
GREEDY = GenerationParams(max_new_tokens=32, temperature=0.0)


def test_a_repeated_prompt_is_answered_the_same_from_the_cache(tiny_gguf) -> None:
    pytest.importorskip("llama_cpp", reason="needs the llama.cpp wheel: make llama-cpp-wheel")
    from generation.llama_cpp_gen import LlamaCppGenerator

    gen = LlamaCppGenerator(str(tiny_gguf), n_ctx=512).load()
    first = gen.generate(MESSAGES, GREEDY)
    assert len(gen._llm.cache.cache_state) == 1  # the state after the first answer was kept
    assert gen.generate(MESSAGES, GREEDY) == first
    off = LlamaCppGenerator(str(tiny_gguf), n_ctx=512, prompt_cache_bytes=0).load()
    assert off._llm.cache is None and off.generate(MESSAGES, GREEDY) == first
