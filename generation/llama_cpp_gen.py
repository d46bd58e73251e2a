"""GGUF generation in-process through llama-cpp-python: the edge path (no torch needed).

Build the wheel with `make llama-cpp-wheel`: the default native build crashes on AVX-512 / AMX CPUs (MODELS.md).
Where the CPU has AVX-512, `make llama-cpp-avx512` adds a faster build that `load` picks (generation/llama_cpp_build).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from core.errors import MissingDependency
from core.protocols import GenerationParams, Message
from generation.llama_cpp_build import select_build
from generation.llama_prompt_cache import prompt_cache

log = logging.getLogger(__name__)

# llama.cpp states of recent prompts, kept in RAM: a prompt that starts like one seen before (the same question and
# evidence, or the same first passages) resumes from its state instead of a fresh prefill. On a 770-token legal
# prompt the first token came in 1.5 s instead of 31 s (bench/bench_first_token.py, 2 busy cores); saving a state
# costs ~0.5 s after each answer and ~12 KB per token (~10 MB an answer), all of it counted against this limit
# (generation/llama_prompt_cache.py: the stock cache left ~0.6 MB a token of logits uncounted). 0 turns it off.
PROMPT_CACHE_BYTES = 256 << 20
# Flash attention: the first token of a 770-token legal prompt came in 18.7 s instead of 29.8 s (same threads, busy
# cores, bench/bench_first_token.py), decode unchanged; citation precision 0.970 and coverage 0.614 either way on
# 6 legal consultation questions (greedy answers identical on most prompts, a near-tie flips late on some).
FLASH_ATTN = True


class LlamaCppGenerator:
    def __init__(self, gguf_path: str, *, n_threads: int = 1, n_threads_batch: int = 0, n_ctx: int = 4096,
                 seed: int = 0, prompt_cache_bytes: int = PROMPT_CACHE_BYTES, flash_attn: bool = FLASH_ATTN,
                 lora_path: str = "", adapter_name: str = "") -> None:
        # the adapter is part of the name: traces, /v1/models and the eval reply cache tell tuned from base by it
        self.name = f"llama-cpp:{gguf_path}" + (f"+{adapter_name or lora_path}" if lora_path else "")
        self.gguf_path = gguf_path
        self.lora_path = lora_path  # a llama.cpp LoRA GGUF applied at load (models/lora_gguf.py); "" = none
        self.n_threads = n_threads  # decode: memory-bound, one thread is as fast and leaves a core free
        self.n_threads_batch = n_threads_batch or n_threads  # prompt: compute-bound, scales with cores
        self.n_ctx = n_ctx
        self.seed = seed
        self.prompt_cache_bytes = prompt_cache_bytes
        self.flash_attn = flash_attn
        self._llm: Any = None
        self._lock = threading.Lock()  # one llama context: requests take turns

    def load(self) -> LlamaCppGenerator:
        if self._llm is None:
            build = select_build()  # before the first import: it decides which libraries llama_cpp loads
            try:
                from llama_cpp import Llama
            except ImportError as err:
                how = ("make llama-cpp-wheel (a portable build: pip's native one crashed on AVX-512 CPUs), "
                       "or generate with --backend transformers")
                raise MissingDependency("llama-cpp-python", extra="edge", how=how) from err
            self._llm = Llama(
                model_path=self.gguf_path, n_threads=self.n_threads, n_threads_batch=self.n_threads_batch,
                n_ctx=self.n_ctx, seed=self.seed, flash_attn=self.flash_attn, verbose=False,
                lora_path=self.lora_path or None,
            )
            if self.prompt_cache_bytes:
                self._llm.set_cache(prompt_cache(self.prompt_cache_bytes))
            log.info("loaded %s%s (%d decode / %d prompt thread(s), n_ctx %d, %s build)", self.gguf_path,
                     f" + LoRA {self.lora_path}" if self.lora_path else "", self.n_threads, self.n_threads_batch,
                     self.n_ctx, build.name)
        return self

    def _call(self, messages: Sequence[Message], params: GenerationParams, stream: bool) -> Any:
        return self._llm.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            repeat_penalty=params.repetition_penalty,
            stop=list(params.stop) or None,
            stream=stream,
        )

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        self.load()
        with self._lock:
            reply = self._call(messages, params, stream=False)
        return reply["choices"][0]["message"].get("content") or ""

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        self.load()
        with self._lock:
            for event in self._call(messages, params, stream=True):
                piece = event["choices"][0]["delta"].get("content")
                if piece:
                    yield piece
