"""In-process generation with OpenVINO: the fast first token on CPUs with native bf16.

On an AVX-512-BF16 EPYC (2 cores) the legal generator's step graph (`generation/openvino_step.py`, int8 weights)
prefilled the service's prompts at 492 tokens/s in bf16, 2.76x llama.cpp's Q4_K_M with the LoRA GGUF, and decoded
at 0.82x (bench/bench_openvino_generator.py, edge/README.md). Precision "auto" follows `core.hardware`: bf16 where the
CPU computes it natively, else f32 (where the split is slower than llama.cpp: keep that backend there).

Sampling follows the transformers backend, token for token when greedy: repetition penalty over the prompt and the
reply (transformers' rule), then temperature and top-p. Between calls the state keeps the last prompt's K/V, and a
new prompt prefills only what follows the prefix it shares with it (the system prompt at least), as llama.cpp does;
the reply is the same as from an emptied state. One lock serialises requests: the K/V lives in the one
stateful infer request, and two generations sharing two cores only slow each other down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DossierError, MissingDependency
from core.hardware import precision_choice
from core.protocols import GenerationParams, Message
from generation.openvino_step import Weights, step_ir
from generation.stops import stream_until_stop

log = logging.getLogger(__name__)

OV_PRECISION = {"bf16": "bf16", "fp32": "f32"}


class OpenVINOGenerator:
    def __init__(self, model_path: str, *, threads: int = 2, precision: str = "auto", weights: Weights = "int8",
                 adapter_path: str = "", adapter_name: str = "") -> None:
        self.name = f"openvino:{model_path}" + (f"+{adapter_name or adapter_path}" if adapter_path else "")
        self.model_path = model_path
        self.adapter_path = adapter_path  # a peft LoRA adapter dir, merged before the graph is written; "" = none
        self.threads = threads  # prefill and decode alike: one compiled graph runs both
        self.precision = precision
        self.weights = weights
        self._request: Any = None
        self._tokenizer: Any = None
        self._eos: frozenset[int] = frozenset()
        self._held: list[int] = []  # the tokens whose K/V the request's state holds, in order
        self._lock = threading.Lock()

    def load(self) -> OpenVINOGenerator:
        if self._request is not None:
            return self
        try:
            from transformers import AutoTokenizer, GenerationConfig
        except ImportError as err:
            raise MissingDependency("transformers", extra="serve") from err
        choice = precision_choice(self.precision, "cpu")
        ir = step_ir(self.model_path, adapter_path=self.adapter_path, weights=self.weights, threads=self.threads)
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self._eos = frozenset(stop_token_ids(self._tokenizer, GenerationConfig, self.model_path))
        self._request = stateful_request(ir, self.threads, OV_PRECISION[choice.value])
        log.info("generator %s%s: OpenVINO, %s weights, %s compute (%s), %d thread(s)", self.model_path,
                 f" + LoRA {self.adapter_path}" if self.adapter_path else "", self.weights, choice.value,
                 choice.reason, self.threads)
        return self

    def _prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        encoded = self._tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True)
        return list(encoded["input_ids"])

    def _reuse_prefix(self, prompt: list[int]) -> int:
        """Keep the state's K/V for the longest prefix this prompt shares with what it holds (the system prompt,
        at least, is the same for every question of a domain), so only the rest is prefilled; returns its length.
        At least one prompt token is always fed: its step gives the first token's logits."""
        keep = min(common_prefix(self._held, prompt), len(prompt) - 1)
        if keep <= 0:
            self._request.reset_state()
        elif keep < len(self._held):
            import openvino as ov

            for state in self._request.query_state():  # K or V of one layer: (1, kv heads, tokens, head dim)
                state.state = ov.Tensor(np.ascontiguousarray(state.state.data[:, :, :keep, :]))
        self._held = self._held[:max(keep, 0)]
        return max(keep, 0)

    def _tokens(self, prompt: list[int], params: GenerationParams) -> Iterator[int]:
        """The reply's token ids, one inference step each; the caller holds the lock."""
        rng = np.random.default_rng()
        seen = self._reuse_prefix(prompt)
        feed, history = prompt[seen:], list(prompt)
        for _ in range(params.max_new_tokens):
            ids = np.array([feed], dtype=np.int64)
            mask = np.ones((1, seen + len(feed)), dtype=np.int64)
            positions = np.arange(seen, seen + len(feed), dtype=np.int64)[None]
            self._held = []  # unknown until the step returns: a failed step leaves a state nobody may reuse
            logits = np.array(self._request.infer([ids, mask, positions])[0][0], dtype=np.float32)
            self._held = history[: seen + len(feed)]
            token = next_token(logits, history, params, rng)
            if token in self._eos:
                return
            yield token
            seen, feed = seen + len(feed), [token]
            history.append(token)

    def _text(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        """The reply's text as it grows; a piece ending inside a multi-byte character waits for the rest."""
        self.load()
        prompt = self._prompt_ids(messages)
        with self._lock:
            reply: list[int] = []
            sent = ""
            for token in self._tokens(prompt, params):
                reply.append(token)
                text = self._tokenizer.decode(reply, skip_special_tokens=True)
                if text.endswith("\ufffd"):
                    continue
                if len(text) > len(sent):
                    yield text[len(sent):]
                sent = text

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        return "".join(self.stream(messages, params))

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        yield from stream_until_stop(self._text(messages, params), params.stop)


def stateful_request(ir: Path, threads: int, precision: str) -> Any:
    """An infer request of the step graph with the K/V made state: each call feeds only the new tokens, and
    `reset_state()` starts the next prompt. `precision` is OpenVINO's compute type ("bf16" or "f32")."""
    try:
        import openvino as ov
        from openvino._offline_transformations import apply_make_stateful_transformation
    except ImportError as err:
        raise MissingDependency("openvino", extra="openvino") from err
    core = ov.Core()
    try:
        graph = core.read_model(str(ir))
    except RuntimeError as err:  # the cache entry was damaged after it was written whole
        raise DossierError(f"the OpenVINO step graph {ir.parent} cannot be read ({err}); delete that folder and the "
                           "next load builds it again") from err
    caches = len(graph.inputs) - 3  # ids, mask, positions, then K and V of every layer
    apply_make_stateful_transformation(graph, {graph.inputs[3 + i].get_any_name(): graph.outputs[1 + i].get_any_name()
                                               for i in range(caches)})
    compiled = core.compile_model(graph, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                 "INFERENCE_PRECISION_HINT": precision})
    return compiled.create_infer_request()


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def stop_token_ids(tokenizer: Any, generation_config: Any, model_path: str) -> set[int]:
    """The model's end-of-turn ids: its generation config's eos (Qwen lists <|im_end|> and <|endoftext|>) and the
    tokenizer's."""
    ids: set[int] = set()
    if (Path(model_path) / "generation_config.json").is_file():
        eos = generation_config.from_pretrained(model_path).eos_token_id
        ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def next_token(logits: np.ndarray, history: Sequence[int], params: GenerationParams, rng: np.random.Generator) -> int:
    """transformers' order: repetition penalty on every id seen (prompt and reply), then greedy, or temperature and
    top-p sampling."""
    if params.repetition_penalty != 1.0:
        seen = np.unique(np.asarray(history, dtype=np.int64))
        scores = logits[seen]
        logits[seen] = np.where(scores > 0, scores / params.repetition_penalty, scores * params.repetition_penalty)
    if params.temperature <= 0:
        return int(np.argmax(logits))
    scaled = logits / params.temperature
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    if params.top_p < 1.0:
        order = np.argsort(-probs)
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, params.top_p)) + 1]  # the smallest set reaching top_p
        kept = np.zeros_like(probs)
        kept[keep] = probs[keep]
        probs = kept / kept.sum()
    return int(rng.choice(len(probs), p=probs))
