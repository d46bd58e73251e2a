"""First tokens: p50 / p95 first-token time and decode tokens/s of the full service path (a legal question with its
evidence) and of the edge bundle (a short question), each as a ratio to raw llama.cpp on the same model and the same
prompt, then the levers: prefix reuse (the system prompt's KV kept, the prompt-state cache), evidence trimming
(`context_chars`, with the citation precision it costs), Q8_0 vs Q4_K_M, threads.

Everything compared is measured in one run, interleaved (each round runs every variant once, questions in turn),
and reported as medians; the load average before and after is printed, since other jobs share the CPU.
first token = from the call to the first streamed text (the service path: retrieval + prefill + one step; raw:
prefill + one step); decode tok/s = (tokens - 1) / (time after the first token), tokens counted by the model's own
tokenizer.

Run: DOSSIER_CACHE_DIR=.cache OMP_NUM_THREADS=1 .venv/bin/python bench/bench_first_token.py --bundle .cache/edge/legal
     [--rounds 3] [--tokens 32] [--questions 4] [--quality 8] [--skip paths,prefix,trim,quant,threads]
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# legal questions as users ask them (the service path); the bundle gets the short form of each
QUESTIONS = ["盗窃公私财物数额较大的，怎么处罚？", "醉酒驾驶机动车构成什么罪，怎么处罚？", "正当防卫的条件是什么？",
             "受贿罪如何定罪处罚？"]
SHORT = ["盗窃罪怎么判？", "醉驾怎么判？", "什么是正当防卫？", "受贿罪怎么判？"]
Stream = Callable[[str], Iterator[str]]  # question -> text pieces


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Timings:
    """Per-variant samples of (first token s, decode tok/s), printed as p50 / p95 / median and ratios."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self.count = count
        self.samples: dict[str, list[tuple[float, float]]] = {}

    def run(self, name: str, stream: Stream, question: str) -> None:
        t0, first, text = time.perf_counter(), None, ""
        for piece in stream(question):
            if first is None and piece:
                first = time.perf_counter() - t0
            text += piece
        total = time.perf_counter() - t0
        first = first or total
        decode = (self.count(text) - 1) / max(total - first, 1e-9)
        self.samples.setdefault(name, []).append((first, decode))

    def table(self, title: str, raw_of: Callable[[str], str | None] = lambda _: None) -> None:
        print(f"\n{title}  (load average now {load_average()})")
        print(f"{'variant':54s} {'first p50 s':>11s} {'p95 s':>6s} {'decode tok/s':>12s} {'x raw first':>11s} "
              f"{'x raw decode':>12s}")
        for name, rows in self.samples.items():
            firsts, decodes = [r[0] for r in rows], [r[1] for r in rows]
            first, decode = statistics.median(firsts), statistics.median(decodes)
            line = f"{name:54s} {first:11.2f} {percentile(firsts, 95):6.2f} {decode:12.1f}"
            raw = raw_of(name)
            if raw in self.samples:
                raw_first = statistics.median(r[0] for r in self.samples[raw])
                raw_decode = statistics.median(r[1] for r in self.samples[raw])
                line += f" {first / raw_first:11.2f} {decode / raw_decode:12.2f}"
            print(line, flush=True)


def interleaved(timings: Timings, variants: dict[str, tuple[Stream, Sequence[str]]], rounds: int) -> None:
    """Every round runs each variant on each of its questions, variants alternating question by question."""
    for name, (stream, questions) in variants.items():
        timings.run(name, stream, questions[0])  # warm-up: load pages, build graphs; not counted
        timings.samples[name].clear()
    n = max(len(q) for _, q in variants.values())
    for _ in range(rounds):
        for i in range(n):
            for name, (stream, questions) in variants.items():
                timings.run(name, stream, questions[i % len(questions)])


def raw_llama(gguf: str, threads: int = 1, prefill: int = 2, **kw: object):
    from generation.llama_cpp_build import select_build

    select_build()  # the same libraries as the service's generator, whichever loads first
    from llama_cpp import Llama

    return Llama(model_path=gguf, n_threads=threads, n_threads_batch=prefill, n_ctx=4096, verbose=False, **kw)


def raw_stream(llm, prompt_of: Callable[[str], list], max_tokens: int, before: Callable[[], None] = lambda: None,
               ) -> Stream:
    """llama-cpp-python's own chat API on the prompt the pipeline would send (repeat penalty as the domain's)."""
    def run(question: str) -> Iterator[str]:
        messages = [{"role": m.role, "content": m.content} for m in prompt_of(question)]
        before()
        for event in llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0,
                                                repeat_penalty=1.1, stream=True):
            yield event["choices"][0]["delta"].get("content") or ""

    return run


def pipeline_stream(pipeline, before: Callable[[], None] = lambda: None) -> Stream:
    def run(question: str) -> Iterator[str]:
        before()
        yield from (piece.delta for piece in pipeline.stream(question) if piece.delta)

    return run


def memo(prompt_of: Callable[[str], list]) -> Callable[[str], list]:
    """Retrieval once per question: the raw runs time llama.cpp alone."""
    cache: dict[str, list] = {}
    return lambda q: cache.setdefault(q, list(prompt_of(q)))


def paths(args: argparse.Namespace, service, bundle, timings: Timings, gguf: str) -> None:
    service_prompt, bundle_prompt = memo(service.prompt), memo(bundle.prompt)
    raw_s, raw_b = raw_llama(gguf, prefill=args.prefill), raw_llama(gguf, prefill=args.prefill)
    variants = {
        "service: RagPipeline.stream (torch embedder)": (pipeline_stream(service), QUESTIONS),
        "raw llama.cpp, the service's prompt": (raw_stream(raw_s, service_prompt, args.tokens), QUESTIONS),
        "bundle: edge RagPipeline.stream (onnx int8)": (pipeline_stream(bundle), SHORT),
        "raw llama.cpp, the bundle's prompt": (raw_stream(raw_b, bundle_prompt, args.tokens), SHORT),
    }
    interleaved(timings, variants, args.rounds)
    tokens = {name: statistics.median(len(raw_s.tokenize(chat_text(p(q)).encode(), special=True)) for q in qs)
              for name, p, qs in (("service", service_prompt, QUESTIONS), ("bundle", bundle_prompt, SHORT))}
    raw_for = {"service: RagPipeline.stream (torch embedder)": "raw llama.cpp, the service's prompt",
               "bundle: edge RagPipeline.stream (onnx int8)": "raw llama.cpp, the bundle's prompt"}
    timings.table(f"paths: prompt tokens median service {tokens['service']:.0f}, bundle {tokens['bundle']:.0f}; "
                  f"up to {args.tokens} new tokens", raw_for.get)


def chat_text(messages: list) -> str:
    """The ChatML text llama.cpp prefills for `messages` (Qwen's template), to count prompt tokens."""
    return "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"


def prefix(args: argparse.Namespace, service, timings: Timings, gguf: str) -> None:
    """cold: the KV cache emptied before each call; shared: llama-cpp-python keeps the last prompt's KV and reuses
    its common prefix (the system prompt); RAM cache: the generator's prompt-state cache, the same question asked
    again."""
    from generation.llama_prompt_cache import prompt_cache

    prompt_of = memo(service.prompt)
    cold, shared, cached = (raw_llama(gguf, prefill=args.prefill) for _ in range(3))
    cached.set_cache(prompt_cache(2 << 30))
    variants = {
        "cold (KV reset before each call)": (raw_stream(cold, prompt_of, args.tokens, cold.reset), QUESTIONS),
        "system prompt's KV kept (llama-cpp-python default)": (raw_stream(shared, prompt_of, args.tokens), QUESTIONS),
        "prompt-state cache, a question asked before": (raw_stream(cached, prompt_of, args.tokens), QUESTIONS),
    }
    for question in QUESTIONS:  # asked once before: the RAM cache holds each prompt's state
        timings.run("priming", variants["prompt-state cache, a question asked before"][0], question)
    del timings.samples["priming"]
    interleaved(timings, variants, args.rounds)
    timings.table("prefix reuse (raw llama.cpp, the service's prompt)")


def trimming(args: argparse.Namespace, service, timings: Timings) -> None:
    """The same pipeline with less evidence in the prompt: first token, and citation precision over answers."""
    from rag.pipeline import RagPipeline

    budgets = [int(b) for b in args.context_chars.split(",")]
    pipes = {b: RagPipeline(replace(service.cfg, generation=replace(service.cfg.generation, context_chars=b)),
                            service.retriever, service.generator) for b in budgets}
    for pipe in pipes.values():
        pipe.params = replace(pipe.params, max_new_tokens=args.tokens)
    # the budgets share one llama context and the evidence comes first, so a smaller budget's prompt is a prefix of
    # the larger one's and llama.cpp would reuse its KV: empty it before each call, so each pays its own prefill
    reset = service.generator._llm.reset
    interleaved(timings, {f"context_chars {b}": (pipeline_stream(p, reset), QUESTIONS) for b, p in pipes.items()},
                args.rounds)
    timings.table("evidence trimming (service path)")
    if args.quality:
        for b, pipe in pipes.items():
            pipe.params = replace(pipe.params, max_new_tokens=service.cfg.generation.max_new_tokens)
            print(f"context_chars {b}: {citation_quality(pipe, args.quality)}", flush=True)


def citation_quality(pipe, n: int) -> str:
    """Mean citation precision / coverage of full answers to the legal consultation set's first n test questions."""
    from eval.answer_items import set_items

    items, _ = set_items(pipe.cfg, "lawbench_consultation", frozenset({"test"}), limit=n)
    traces = [pipe.answer(item.question).trace.get("citations") or {} for item in items]
    precision = [t["precision"] for t in traces if t.get("precision") is not None]
    coverage = [t["coverage"] for t in traces if t.get("coverage") is not None]
    mean = lambda xs: f"{statistics.mean(xs):.3f}" if xs else "n/a"  # noqa: E731
    return f"citation precision {mean(precision)} ({len(precision)} citing answers of {len(items)}), " \
           f"coverage {mean(coverage)}"


def quant_and_threads(args: argparse.Namespace, service, timings: Timings, gguf: str, skip: set[str]) -> None:
    prompt_of = memo(service.prompt)
    if "quant" not in skip:
        q8 = Path(args.q8)
        if not q8.is_file():
            from edge.export.quantize import quantize_gguf

            quantize_gguf(Path(gguf), q8, "q8_0", threads=2)
        variants = {name: (raw_stream(raw_llama(path, prefill=args.prefill), prompt_of, args.tokens), QUESTIONS)
                    for name, path in (("Q4_K_M (shipped)", gguf), ("Q8_0 (from the Q4_K_M)", str(q8)))}
        interleaved(timings, variants, args.rounds)
        timings.table("quantisation (raw llama.cpp, the service's prompt)")
    if "threads" not in skip:
        grid = {"decode 1 / prefill 1": {"threads": 1, "prefill": 1},
                "decode 1 / prefill 2": {"threads": 1, "prefill": 2},
                "decode 2 / prefill 2": {"threads": 2, "prefill": 2},
                "decode 1 / prefill 2, flash attention": {"threads": 1, "prefill": 2, "flash_attn": True}}
        variants = {name: (raw_stream(raw_llama(gguf, **kw), prompt_of, args.tokens), QUESTIONS)
                    for name, kw in grid.items()}
        interleaved(timings, variants, args.rounds)
        timings.table("threads (raw llama.cpp, the service's prompt)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True, help="an edge bundle of the legal domain")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per timed answer")
    parser.add_argument("--prefill", type=int, default=2, help="prompt threads of the raw llama.cpp runs")
    parser.add_argument("--context-chars", default="2400,1600,1200")
    parser.add_argument("--quality", type=int, default=0, help="citation precision over N full answers per budget")
    parser.add_argument("--q8", default=".cache/edge/qwen2.5-coder-0.5b-instruct.q8_0.gguf")
    parser.add_argument("--skip", default="", help="comma-separated: paths, prefix, trim, quant, threads")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), help="use the first N questions")
    args = parser.parse_args()
    del QUESTIONS[args.questions:], SHORT[args.questions:]
    logging.basicConfig(level=logging.WARNING)
    skip = set(filter(None, args.skip.split(",")))
    from domains import load_domain
    from edge.runtime import edge_pipeline, open_bundle
    from models.registry import gguf_file
    from rag.build import build_pipeline

    print(f"load average at start {load_average()} (2 cores, shared with other jobs)", flush=True)
    service = build_pipeline(load_domain("legal"), backend="llama-cpp")
    bundle = edge_pipeline(open_bundle(args.bundle, hashes=False))
    for pipe in (service, bundle):
        pipe.params = replace(pipe.params, max_new_tokens=args.tokens)
        # each timed call stands for a new question: the prompt cache (a repeat) is its own lever, in prefix()
        pipe.generator.load()._llm.set_cache(None)
    gguf = gguf_file(load_domain("legal").models.generator_gguf)
    counter = raw_llama(gguf, vocab_only=True)
    timings = Timings(lambda text: len(counter.tokenize(text.encode(), add_bos=False)))
    steps = {"paths": lambda: paths(args, service, bundle, timings, gguf),
             "prefix": lambda: prefix(args, service, timings, gguf),
             "trim": lambda: trimming(args, service, timings)}
    for name, step in steps.items():
        if name not in skip:
            timings.samples.clear()
            step()
    timings.samples.clear()
    quant_and_threads(args, service, timings, gguf, skip)
    print(f"\nload average at the end {load_average()}")


if __name__ == "__main__":
    main()
