"""The shipped adapter in llama.cpp: applied at load as a LoRA GGUF (the service's form) vs merged into the GGUF
(`edge.export.generator`, requantised like the edge bundle) vs the base model alone, on the service's legal prompt.

A LoRA GGUF adds two small matmuls per adapted projection to every graph llama.cpp builds; this bench asks what
that costs in prefill (the first token) and decode on these cores. Raw llama.cpp, the same build the service picks,
the same prompts (retrieval once per question), the KV cache emptied before each call so every call prefills the
whole prompt; variants interleaved, medians. Greedy replies of the two tuned forms are compared word for word.

Run: DOSSIER_CACHE_DIR=.cache OMP_NUM_THREADS=1 .venv/bin/python bench/bench_merged_adapter.py [--rounds 3]
     [--tokens 32] [--prefill 2] [--quant q4_k_m]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_first_token import (  # noqa: E402
    QUESTIONS,
    Timings,
    chat_text,
    interleaved,
    load_average,
    memo,
    raw_llama,
    raw_stream,
)


def merged_gguf(base: Path, adapter, quant: str) -> Path:
    """The adapter merged into `base` and quantised to `quant`, kept under the cache (keyed by both) for reruns."""
    from core.paths import cache_dir
    from edge.export.generator import export_generator
    from models.peft_lora import read_lora

    dest = cache_dir() / "bench" / "merged-adapter" / f"{adapter.sha256[:12]}-{base.stem}-{quant}.gguf"
    if not dest.is_file():
        export_generator(base, dest, read_lora(adapter.path), quant, dest.parent / "work", threads=2)
    return dest


def greedy(llm, messages: list, tokens: int) -> str:
    reply = llm.create_chat_completion(messages=messages, max_tokens=tokens, temperature=0.0, repeat_penalty=1.1)
    return reply["choices"][0]["message"]["content"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per timed answer")
    parser.add_argument("--prefill", type=int, default=2, help="prompt threads (decode runs on 1, the domain's)")
    parser.add_argument("--quant", default="q4_k_m", help="the merged GGUF's type (llama.cpp's quantiser)")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), help="use the first N questions")
    parser.add_argument("--compare-tokens", type=int, default=96, help="greedy tokens compared between tuned forms")
    args = parser.parse_args()
    questions = QUESTIONS[:args.questions]
    logging.basicConfig(level=logging.WARNING)
    from domains import load_domain
    from models.generator_adapter import gguf_adapter, shipped_adapter
    from models.registry import gguf_file
    from rag.build import build_pipeline
    from rag.build_retrieval import build_retriever

    cfg = load_domain("legal")
    adapter = shipped_adapter(cfg)
    if adapter is None:
        raise SystemExit("the legal domain ships no generator adapter: nothing to compare")
    base = Path(gguf_file(cfg.models.generator_gguf))
    lora, merged = gguf_adapter(adapter, base), merged_gguf(base, adapter, args.quant)
    print(f"load average at start {load_average()}; base {base.name} ({base.stat().st_size >> 20} MiB), "
          f"merged {merged.name} ({merged.stat().st_size >> 20} MiB), adapter {adapter.name}", flush=True)

    prompt_of = memo(build_pipeline(cfg, retriever=build_retriever(cfg), load=False).prompt)
    forms = {"base + LoRA GGUF (the service's form)": raw_llama(str(base), prefill=args.prefill, lora_path=str(lora)),
             f"adapter merged, {args.quant}": raw_llama(str(merged), prefill=args.prefill),
             "base alone (no adapter)": raw_llama(str(base), prefill=args.prefill)}
    counter = forms["base alone (no adapter)"]
    timings = Timings(lambda text: len(counter.tokenize(text.encode(), add_bos=False)))
    variants = {name: (raw_stream(llm, prompt_of, args.tokens, llm.reset), questions) for name, llm in forms.items()}
    interleaved(timings, variants, args.rounds)
    prompt_tokens = statistics.median(len(counter.tokenize(chat_text(prompt_of(q)).encode(), special=True))
                                      for q in questions)
    service = "base + LoRA GGUF (the service's form)"
    timings.table(f"the adapter in llama.cpp: prompt tokens median {prompt_tokens:.0f}, KV emptied before each call, "
                  f"up to {args.tokens} new tokens; ratios against the service's form",
                  lambda name: service if name != service else None)

    tuned = [forms[service], forms[f"adapter merged, {args.quant}"]]
    same = 0
    for question in questions:
        messages = [{"role": m.role, "content": m.content} for m in prompt_of(question)]
        replies = [greedy(llm, messages, args.compare_tokens) for llm in tuned]
        same += replies[0] == replies[1]
        print(f"\n{question}\n  LoRA GGUF: {replies[0]!r}\n  merged:    {replies[1]!r}")
    print(f"\ngreedy replies identical, LoRA GGUF vs merged: {same} / {len(questions)} "
          f"(first {args.compare_tokens} tokens)")
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
