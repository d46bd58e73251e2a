"""Generation speed per CPU backend as a ratio to raw llama.cpp on the same model, in one run (see bench_api.py).

Tokens are counted by re-tokenising every output with the same Qwen tokenizer, so backends are compared alike.
decode tok/s = (tokens - 1) / (time after the first token); first token = prefill + one step.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator

GEN_PROMPT = "请详细解释中国刑法中盗窃罪的构成要件和量刑标准，分点说明。"
QWEN_GGUF, QWEN_DIR = "qwen2.5-coder-0.5b-instruct-gguf", "qwen2.5-coder-0.5b-instruct"

Streamer = Callable[[], Iterator[str]]


def timed(stream: Streamer, count: Callable[[str], int]) -> dict[str, float]:
    t0, first, text = time.perf_counter(), None, ""
    for piece in stream():
        if first is None and piece:
            first = time.perf_counter() - t0
        text += piece
    total = time.perf_counter() - t0
    tokens = count(text)
    first = first or total
    return {"first": first, "total": total, "tokens": tokens, "decode": (tokens - 1) / max(total - first, 1e-9)}


def raw_llama(gguf: str, max_tokens: int, prompt_threads: int) -> Streamer:
    from llama_cpp import Llama

    llm = Llama(model_path=gguf, n_threads=1, n_threads_batch=prompt_threads, n_ctx=2048, verbose=False)
    messages = [{"role": "user", "content": GEN_PROMPT}]

    def run() -> Iterator[str]:
        for event in llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0,
                                                stream=True):
            yield event["choices"][0]["delta"].get("content") or ""

    return run


def via_generator(gen, max_tokens: int) -> Streamer:
    from core.protocols import GenerationParams, Message

    messages, params = [Message("user", GEN_PROMPT)], GenerationParams(max_new_tokens=max_tokens)
    return lambda: gen.stream(messages, params)


def backends(args: argparse.Namespace, stack) -> dict[str, Streamer]:
    from model_servers import llama_cpp_server, vllm_cpu_server

    from domains import load_domain
    from generation.llama_cpp_gen import LlamaCppGenerator
    from generation.openai_http import OpenAIHttpGenerator
    from generation.transformers_gen import TransformersGenerator
    from models.registry import gguf_file, resolve_model

    gguf, model_dir, n = gguf_file(QWEN_GGUF), resolve_model(QWEN_DIR), args.gen_tokens
    gen = load_domain("legal").generation
    prompt_threads = gen.prefill_threads or gen.threads
    default = {"transformers": "transformers bf16", "llama-cpp": "llama-cpp (LlamaCppGenerator)"}.get(gen.backend)
    out = {
        "raw llama.cpp (llama-cpp-python API)": raw_llama(gguf, n, prompt_threads),
        "transformers bf16": via_generator(TransformersGenerator(model_dir).load(), n),
        "llama-cpp (LlamaCppGenerator)": via_generator(
            LlamaCppGenerator(gguf, n_ctx=2048, n_threads_batch=prompt_threads).load(), n),
    }
    if default in out:
        out[f"{default} (CPU default)"] = out.pop(default)
    server = stack.enter_context(llama_cpp_server(gguf))
    out["openai-http -> llama_cpp.server"] = via_generator(OpenAIHttpGenerator(server.base_url).load(), n)
    if args.fp32:
        out["transformers fp32"] = via_generator(TransformersGenerator(model_dir, dtype="float32").load(), n)
    if args.vllm:
        vllm = stack.enter_context(vllm_cpu_server(model_dir))
        out["openai-http -> vLLM (vllm-cpu)"] = via_generator(OpenAIHttpGenerator(vllm.base_url).load(), n)
    return out


def generation_figures(args: argparse.Namespace) -> None:
    from contextlib import ExitStack

    from transformers import AutoTokenizer

    from models.registry import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model(QWEN_DIR))
    count = lambda text: len(tok(text)["input_ids"])  # noqa: E731
    with ExitStack() as stack:
        runs = backends(args, stack)
        for stream in runs.values():
            timed(stream, count)  # warm-up
        results: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
        for _ in range(args.reps):
            for name, stream in runs.items():
                results[name].append(timed(stream, count))
    raw = statistics.median(r["decode"] for r in results["raw llama.cpp (llama-cpp-python API)"])
    print(f"\ngeneration, 1 decode thread, greedy, up to {args.gen_tokens} new tokens, median of {args.reps}:")
    print(f"{'backend':40s} {'decode tok/s':>12s} {'x raw':>6s} {'first token s':>13s} {'tokens':>6s}")
    for name, rows in results.items():
        decode = statistics.median(r["decode"] for r in rows)
        first = statistics.median(r["first"] for r in rows)
        tokens = statistics.median(r["tokens"] for r in rows)
        print(f"{name:40s} {decode:12.1f} {decode / raw:6.2f} {first:13.2f} {tokens:6.0f}")
