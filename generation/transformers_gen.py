"""In-process generation with transformers: the embedded CPU default.

Precision and device "auto" (`core.hardware`, logged at load): bf16 on a GPU or a CPU with native bf16 (on
AVX-512-BF16 / AMX cores prefill runs ~3.5x faster than fp32 and decode, memory-bound, is no slower: MODELS.md,
`bench/bench_api.py`), fp32 elsewhere (bf16 without native support is several times slower). One lock serialises
requests: two generations sharing two cores only slow each other down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from core.errors import MissingDependency
from core.hardware import choose_placement
from core.protocols import GenerationParams, Message
from generation.stops import cut_at_stop, stream_until_stop

log = logging.getLogger(__name__)


class TransformersGenerator:
    def __init__(self, model_path: str, *, threads: int = 1, precision: str = "auto", device: str = "auto",
                 adapter_path: str = "", adapter_name: str = "") -> None:
        self.name = f"transformers:{model_path}" + (f"+{adapter_name or adapter_path}" if adapter_path else "")
        self.model_path = model_path
        self.adapter_path = adapter_path  # a peft LoRA adapter dir, merged into the weights at load; "" = none
        self.threads = threads
        self.requested = (precision, device)
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> TransformersGenerator:
        if self._model is not None:
            return self
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as err:
            raise MissingDependency("transformers", extra="serve") from err
        placed = choose_placement(*self.requested)
        torch.set_num_threads(self.threads)
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        dtype = torch.bfloat16 if placed.precision.value == "bf16" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype)
        if self.adapter_path:
            from peft import PeftModel

            # merged once at load: generation then runs at the base model's speed
            model = PeftModel.from_pretrained(model, self.adapter_path).merge_and_unload()
        self._model = model.to(placed.device.value).eval()
        log.info("generator %s%s: %s, %d thread(s)", self.model_path,
                 f" + LoRA {self.adapter_path}" if self.adapter_path else "", placed.describe(), self.threads)
        return self

    def _inputs(self, messages: Sequence[Message]) -> Any:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        return self._tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self._model.device)

    def _kwargs(self, params: GenerationParams) -> dict[str, Any]:
        sample = params.temperature > 0
        kwargs: dict[str, Any] = {"max_new_tokens": params.max_new_tokens, "do_sample": sample,
                                  "repetition_penalty": params.repetition_penalty}
        if sample:
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        pad = self._tokenizer.pad_token_id
        kwargs["pad_token_id"] = pad if pad is not None else self._tokenizer.eos_token_id
        return kwargs

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        import torch

        self.load()
        inputs = self._inputs(messages)
        with self._lock, torch.inference_mode():
            output = self._model.generate(**inputs, **self._kwargs(params))
        new_tokens = output[0, inputs["input_ids"].shape[1] :]  # (new,)
        text = self._tokenizer.decode(new_tokens, skip_special_tokens=True)
        return cut_at_stop(text, params.stop)[0]

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        yield from stream_until_stop(self._stream_raw(messages, params), params.stop)

    def _stream_raw(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        self.load()
        inputs = self._inputs(messages)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        cancelled = threading.Event()  # set when the consumer stops early (e.g. the HTTP client went away)

        def stop_if_cancelled(input_ids: Any, scores: Any, **_: Any) -> Any:
            return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool, device=input_ids.device)

        def run() -> None:
            with torch.inference_mode():
                self._model.generate(
                    **inputs,
                    **self._kwargs(params),
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([stop_if_cancelled]),
                )

        with self._lock:
            worker = threading.Thread(target=run, name="transformers-generate", daemon=True)
            worker.start()
            try:
                for piece in streamer:
                    if piece:
                        yield piece
            finally:
                cancelled.set()
                worker.join()
