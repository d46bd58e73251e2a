"""generation/llama_prompt_cache.py on a real llama.cpp model (the scripted tiny GGUF of conftest.py): a saved
state keeps one row of logits, the size limit counts K/V, logits and ids together and evicts by it, and a prompt
resumed from a saved state gets the reply a cold model gives."""

from __future__ import annotations

from pathlib import Path

from core.protocols import GenerationParams, Message
from generation.llama_cpp_gen import LlamaCppGenerator
from generation.llama_prompt_cache import state_bytes

SCRIPT = "故意杀人的，处死刑或者十年以上有期徒刑[1]。"  # what conftest.py's scripted GGUF answers
PARAMS = GenerationParams(max_new_tokens=40)
QUESTIONS = ["故意杀人怎么判？", "盗窃罪怎么判？", "抢劫罪怎么判？"]


def chat(question: str) -> list[Message]:
    return [Message("system", "请根据资料回答。" * 8), Message("user", question)]


def test_states_keep_one_row_of_logits_and_replies_match_a_cold_model(scripted_gguf: Path) -> None:
    warm = LlamaCppGenerator(str(scripted_gguf), prompt_cache_bytes=64 << 20).load()
    replies = [warm.generate(chat(q), PARAMS) for q in QUESTIONS + QUESTIONS[:1]]  # the last one resumes a state
    assert replies == [SCRIPT] * 4
    states = list(warm._llm.cache.cache_state.values())
    assert len(states) == 3
    for state in states:
        assert state.scores.shape[0] == 1 and state.n_tokens > 20  # many tokens, one row of logits
    assert warm._llm.cache.cache_size == sum(state_bytes(s) for s in states)


def test_the_limit_counts_logits_and_evicts_the_oldest(scripted_gguf: Path) -> None:
    probe = LlamaCppGenerator(str(scripted_gguf), prompt_cache_bytes=64 << 20).load()
    probe.generate(chat(QUESTIONS[0]), PARAMS)
    one = state_bytes(next(iter(probe._llm.cache.cache_state.values())))
    assert one > next(iter(probe._llm.cache.cache_state.values())).llama_state_size  # more than the K/V alone
    small = LlamaCppGenerator(str(scripted_gguf), prompt_cache_bytes=int(one * 1.5)).load()  # room for one state
    for question in QUESTIONS:
        assert small.generate(chat(question), PARAMS) == SCRIPT
    kept = list(small._llm.cache.cache_state)
    assert len(kept) == 1 and small._llm.cache.cache_size <= int(one * 1.5)
