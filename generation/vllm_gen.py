"""In-process vLLM for GPU machines (extra `vllm`). vLLM's offline engine returns whole completions, so
`stream` yields the answer as one piece; for token streaming run vLLM's OpenAI server and use
`OpenAIHttpGenerator` (`make vllm-cpu-serve` does that on CPU)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from core.errors import MissingDependency
from core.protocols import GenerationParams, Message

log = logging.getLogger(__name__)


class VllmGenerator:
    def __init__(self, model_path: str, *, max_model_len: int = 4096, gpu_memory_utilization: float = 0.85,
                 adapter_path: str = "", adapter_name: str = "") -> None:
        self.name = f"vllm:{model_path}" + (f"+{adapter_name or adapter_path}" if adapter_path else "")
        self.model_path = model_path
        self.adapter_path = adapter_path  # a peft LoRA adapter dir, served by vLLM's LoRA support; "" = none
        self.adapter_name = adapter_name or "adapter"
        self.max_model_len = max_model_len
        self.gpu_memory_utilization = gpu_memory_utilization
        self._llm: Any = None

    def load(self) -> VllmGenerator:
        if self._llm is None:
            try:
                from vllm import LLM
            except ImportError as err:
                raise MissingDependency("vllm", extra="vllm") from err
            self._llm = LLM(
                model=self.model_path,
                max_model_len=self.max_model_len,
                gpu_memory_utilization=self.gpu_memory_utilization,
                enable_lora=bool(self.adapter_path),
            )
        return self

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        from vllm import SamplingParams

        self.load()
        sampling = SamplingParams(
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            repetition_penalty=params.repetition_penalty,
            stop=list(params.stop) or None,
        )
        chat = [{"role": m.role, "content": m.content} for m in messages]
        lora = None
        if self.adapter_path:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest(self.adapter_name, 1, self.adapter_path)
        outputs = self._llm.chat(chat, sampling, use_tqdm=False, lora_request=lora)
        return outputs[0].outputs[0].text

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        yield self.generate(messages, params)
