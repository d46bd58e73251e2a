"""The legal generator under OpenVINO against llama.cpp: prefill and decode tokens/s on the service's own prompts.

Issue 14's first token is prefill-bound, and on an AVX2-only CPU llama.cpp's portable build reads well under 100
prompt tokens/s. This bench asks whether OpenVINO's CPU plugin does better on the same weights: the shipped adapter is
merged into the bf16 transformers form of the base model (fp32 here), Qwen2 is written out over those weights as one
graph that takes and returns the K/V cache (prefill and decode alike; no transformers cache class in the trace), and
the graph is converted to OpenVINO IR, f32 and with int8 weights (NNCF), then made stateful (the K/V stays inside
OpenVINO between steps). llama.cpp runs the service's form: the shipped GGUF with the adapter GGUF.

Every variant answers the same prompts (the legal pipeline's, with real evidence) in interleaved rounds; medians and
ratios to the first llama.cpp variant are printed, with the load average. `--check` first compares each OpenVINO
model's greedy continuation with torch fp32's on the same merged weights.

Run: DOSSIER_CACHE_DIR=.cache .venv/bin/python bench/bench_openvino_generator.py [--rounds 2] [--tokens 32]
     [--threads 2] [--check]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_first_token import load_average, raw_llama  # noqa: E402

QUESTIONS = ["盗窃公私财物数额较大的，怎么处罚？", "醉酒驾驶机动车构成什么罪，怎么处罚？", "正当防卫的条件是什么？",
             "受贿罪如何定罪处罚？", "朋友借钱一直不还，过了几年还能起诉吗？"]
BASE = "qwen2.5-coder-0.5b-instruct"
Runner = Callable[[np.ndarray], tuple[float, float, list[int]]]  # prompt ids -> prefill tok/s, decode tok/s, tokens


def export(model_path: str, adapter_path: str, threads: int, out: Path) -> tuple[dict[str, Path], object]:
    """The step graph (`generation.openvino_step`) as IR, f32 and int8 weights, kept under `out` (keyed by the
    adapter) for the next run; and the merged fp32 model the greedy check compares with."""
    from generation.openvino_step import convert_step, merged_fp32_model

    model = merged_fp32_model(model_path, adapter_path, threads)
    forms = {"f32": out / "step-f32.xml", "int8 weights": out / "step-int8.xml"}
    for form, path in forms.items():
        if not path.exists():
            convert_step(model, path, "f32" if form == "f32" else "int8")
    return forms, model


def openvino_runner(path: Path, threads: int, new_tokens: int, precision: str = "f32") -> Runner:
    from generation.openvino_gen import stateful_request

    request = stateful_request(path, threads, precision)

    def run(ids: np.ndarray) -> tuple[float, float, list[int]]:
        request.reset_state()
        feed, seen, tokens = ids, 0, []
        started = time.perf_counter()
        for _ in range(new_tokens):
            new = feed.shape[1]
            logits = request.infer([feed, np.ones((1, seen + new), np.int64), np.arange(seen, seen + new)[None]])[0]
            tokens.append(int(np.argmax(logits[0])))
            if len(tokens) == 1:
                first = time.perf_counter()
            seen, feed = seen + new, np.array([[tokens[-1]]], np.int64)
        done = time.perf_counter()
        return ids.shape[1] / (first - started), (new_tokens - 1) / (done - first), tokens

    return run


def llama_runner(gguf: str, lora: str, threads: int, prefill_threads: int, new_tokens: int) -> Runner:
    llm = raw_llama(gguf, threads, prefill_threads, lora_path=lora)

    def run(ids: np.ndarray) -> tuple[float, float, list[int]]:
        llm.reset()
        tokens: list[int] = []
        started = time.perf_counter()
        for token in llm.generate(ids[0].tolist(), temp=0.0, repeat_penalty=1.0, reset=True):
            tokens.append(token)
            if len(tokens) == 1:
                first = time.perf_counter()
            if len(tokens) == new_tokens:
                break
        return ids.shape[1] / (first - started), (new_tokens - 1) / (time.perf_counter() - first), tokens

    return run


def torch_greedy(model, prompts: list[np.ndarray], new_tokens: int) -> list[list[int]]:
    import torch

    with torch.no_grad():
        return [model.generate(torch.from_numpy(ids), max_new_tokens=new_tokens, do_sample=False, temperature=None,
                               top_p=None, top_k=None)[0, ids.shape[1]:].tolist() for ids in prompts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=32, help="greedy new tokens per measurement")
    parser.add_argument("--threads", type=int, default=2, help="OpenVINO threads and llama.cpp's prompt threads")
    parser.add_argument("--check", action="store_true", help="greedy continuations against torch fp32 first")
    parser.add_argument("--precision", default="f32", help="OpenVINO inference precisions, comma-separated: f32, "
                        "bf16 (native only where the CPU has avx512_bf16 or AMX; else OpenVINO runs f32)")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    from core.paths import cache_dir
    from domains import load_domain
    from models.generator_adapter import gguf_adapter, shipped_adapter
    from models.registry import gguf_file, resolve_model
    from rag.build import build_pipeline

    cfg = load_domain("legal")
    adapter = shipped_adapter(cfg)
    pipeline = build_pipeline(cfg, backend="transformers")  # its prompt only: the generator is never loaded
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(BASE))
    prompts = [tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in pipeline.prompt(q)],
                                             add_generation_prompt=True, return_tensors="np",
                                             return_dict=True)["input_ids"] for q in QUESTIONS]
    print(f"prompt tokens {[p.shape[1] for p in prompts]}; load average {load_average()}", flush=True)
    forms, model = export(resolve_model(BASE), str(adapter.path), args.threads,
                          cache_dir() / "bench" / "openvino-step" / adapter.sha256[:12])
    reference = torch_greedy(model, prompts, args.tokens) if args.check else []
    del model
    gguf = gguf_file(cfg.models.generator_gguf)
    lora = str(gguf_adapter(adapter, Path(gguf)))
    variants: dict[str, Runner] = {
        "llama.cpp, decode 1 / prompt N threads (the domains' setting)":
            llama_runner(gguf, lora, 1, args.threads, args.tokens),
        "llama.cpp, decode N / prompt N threads": llama_runner(gguf, lora, args.threads, args.threads, args.tokens),
    }
    variants |= {f"OpenVINO {form}, {precision} compute, stateful":
                 openvino_runner(path, args.threads, args.tokens, precision)
                 for precision in args.precision.split(",") for form, path in forms.items()}
    if reference:
        for name, run in list(variants.items())[2:]:
            same = sum(run(ids)[2] == want for ids, want in zip(prompts, reference, strict=True))
            print(f"{name}: greedy continuation = torch fp32 on {same} of {len(prompts)} prompts", flush=True)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for ids in prompts:
            for name, run in variants.items():
                samples[name].append(run(ids)[:2])
    first = samples[next(iter(variants))]
    base_prefill, base_decode = (statistics.median(s[i] for s in first) for i in (0, 1))
    print(f"\n{args.threads} threads, {args.rounds} rounds x {len(prompts)} prompts, {args.tokens} new tokens\n"
          "| variant | prefill tok/s | decode tok/s | x llama.cpp (domains' setting) prefill / decode |\n"
          "|---|---|---|---|")
    for name, values in samples.items():
        prefill, decode = (statistics.median(v[i] for v in values) for i in (0, 1))
        print(f"| {name} | {prefill:.0f} | {decode:.1f} | {prefill / base_prefill:.2f} / {decode / base_decode:.2f} |")
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
