"""The service's first token per generation backend: `RagPipeline.stream` on legal questions as users ask them (the
domain's retrieval, evidence and tuned adapter), llama.cpp (the shipped GGUF + the LoRA GGUF) against OpenVINO (the
step graph with the adapter merged, int8 weights, bf16 compute where the CPU has it), interleaved, medians; then
each backend's greedy reply to the same prompts, side by side.

first token = from the call to the first streamed text (retrieval + prefill + one step); decode tok/s = (tokens - 1)
/ (time after the first token). Each timed call stands for a new question: llama.cpp's prompt-state cache (a
repeat) is off; both keep the last prompt's K/V between calls, as in service, so the system prompt is not
prefilled again.

Run: DOSSIER_CACHE_DIR=.cache OMP_NUM_THREADS=1 .venv/bin/python bench/bench_service_backends.py [--rounds 3]
     [--tokens 32] [--backends llama-cpp,openvino]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_first_token import QUESTIONS, Timings, interleaved, load_average, pipeline_stream  # noqa: E402

# the everyday questions of issue 12 beside the first-token bench's
EVERYDAY = ["朋友借钱一直不还，过了几年还能起诉吗？", "公司不给签劳动合同，可以要求双倍工资吗？"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per timed answer")
    parser.add_argument("--backends", default="llama-cpp,openvino")
    parser.add_argument("--compare-tokens", type=int, default=96, help="greedy tokens shown per backend")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from domains import load_domain
    from rag.build import build_pipeline
    from rag.build_retrieval import build_retriever

    cfg = load_domain("legal")
    questions = QUESTIONS + EVERYDAY
    retriever = build_retriever(cfg)
    pipelines = {name: build_pipeline(cfg, backend=name, retriever=retriever) for name in args.backends.split(",")}
    for pipe in pipelines.values():
        pipe.params = replace(pipe.params, max_new_tokens=args.tokens)
    if "llama-cpp" in pipelines:
        pipelines["llama-cpp"].generator.load()._llm.set_cache(None)
    print(f"load average at start {load_average()}; generators: "
          + ", ".join(p.generator.name for p in pipelines.values()), flush=True)
    counter = next(iter(pipelines.values()))
    tokenizer = getattr(counter.generator, "_tokenizer", None)
    count = (lambda text: len(tokenizer(text)["input_ids"])) if tokenizer is not None else \
        (lambda text: len(counter.generator._llm.tokenize(text.encode(), add_bos=False)))
    timings = Timings(count)
    variants = {f"service, {name}": (pipeline_stream(pipe), questions) for name, pipe in pipelines.items()}
    interleaved(timings, variants, args.rounds)
    timings.table(f"the service's first token per backend: {len(questions)} legal questions x {args.rounds} rounds, "
                  f"up to {args.tokens} new tokens; ratios against {next(iter(variants))}",
                  lambda name: next(iter(variants)) if name != next(iter(variants)) else None)
    firsts = {name: statistics.median(r[0] for r in rows) for name, rows in timings.samples.items()}
    print("first token p50 by backend: " + ", ".join(f"{k} {v:.2f} s" for k, v in firsts.items()))

    for pipe in pipelines.values():
        pipe.params = replace(pipe.params, max_new_tokens=args.compare_tokens)
    for question in questions:
        print(f"\n{question}")
        for name, pipe in pipelines.items():
            answer = pipe.answer(question)
            print(f"  {name}: {answer.text!r} ({len(answer.citations)} citations"
                  f"{', abstained' if answer.abstained else ''})")
    print(f"\nload average at the end {load_average()}")


if __name__ == "__main__":
    main()
