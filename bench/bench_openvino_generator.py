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


def step_module(model):
    """Qwen2 over `model`'s weights: (ids, attention mask, positions, *past K/V) -> (last logits, *present K/V)."""
    import torch

    class QwenStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            cfg = model.config
            self.body, self.head = model.model, model.lm_head
            self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
            self.head_dim = cfg.hidden_size // cfg.num_attention_heads
            theta = cfg.rope_parameters["rope_theta"]
            steps = torch.arange(0, self.head_dim, 2).float() / self.head_dim
            self.register_buffer("inv_freq", 1.0 / theta ** steps, persistent=False)

        def forward(self, input_ids, attention_mask, position_ids, *past):
            new = input_ids.shape[1]
            freqs = position_ids[0].float()[:, None] * self.inv_freq[None, :]
            angles = torch.cat([freqs, freqs], dim=-1)
            cos, sin = angles.cos()[None, None], angles.sin()[None, None]
            seen = past[0].shape[2]
            # causal over the cache: new token i (position seen + i) sees keys 0 .. seen + i
            mask = torch.arange(seen + new)[None, :] <= (torch.arange(new) + seen)[:, None]
            hidden, presents = self.body.embed_tokens(input_ids), []
            for i, layer in enumerate(self.body.layers):
                attn, x = layer.self_attn, layer.input_layernorm(hidden)
                q, k, v = (proj(x).view(1, new, n, self.head_dim).transpose(1, 2) for proj, n in
                           ((attn.q_proj, self.heads), (attn.k_proj, self.kv_heads), (attn.v_proj, self.kv_heads)))
                q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
                k, v = torch.cat([past[2 * i], k], dim=2), torch.cat([past[2 * i + 1], v], dim=2)
                presents += [k, v]
                group = self.heads // self.kv_heads
                out = torch.nn.functional.scaled_dot_product_attention(
                    q, k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1), attn_mask=mask)
                hidden = hidden + attn.o_proj(out.transpose(1, 2).reshape(1, new, self.heads * self.head_dim))
                hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
            return (self.head(self.body.norm(hidden[:, -1:, :]))[:, 0, :], *presents)

    return QwenStep().eval()


def rotate_half(x):
    import torch

    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def merged_model(adapter_path: str, threads: int):
    """The service's transformers form with the adapter merged; fp32 on the CPU, since the graph is traced in f32
    and OpenVINO runs on the CPU."""
    from generation.transformers_gen import TransformersGenerator
    from models.registry import resolve_model

    generator = TransformersGenerator(resolve_model(BASE), threads=threads, precision="fp32", device="cpu",
                                      adapter_path=adapter_path)
    return generator.load()._model


def export(model, out: Path) -> dict[str, Path]:
    """The step graph as IR, f32 and int8 weights; kept under `out` (keyed by the adapter) for the next run."""
    forms = {"f32": out / "step-f32.xml", "int8 weights": out / "step-int8.xml"}
    if all(path.exists() for path in forms.values()):
        return forms
    import nncf
    import openvino as ov
    import torch

    cfg = model.config
    shape = (1, cfg.num_key_value_heads, 3, cfg.hidden_size // cfg.num_attention_heads)
    example = (torch.ones(1, 5, dtype=torch.long), torch.ones(1, 8, dtype=torch.long), torch.arange(3, 8)[None],
               *[torch.zeros(shape) for _ in range(2 * cfg.num_hidden_layers)])
    with torch.no_grad():
        graph = ov.convert_model(step_module(model), example_input=example)
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(graph, forms["f32"], compress_to_fp16=False)
    ov.save_model(nncf.compress_weights(graph), forms["int8 weights"])
    return forms


def openvino_runner(path: Path, threads: int, new_tokens: int) -> Runner:
    import openvino as ov
    from openvino._offline_transformations import apply_make_stateful_transformation

    core = ov.Core()
    graph = core.read_model(str(path))
    caches = len(graph.inputs) - 3
    apply_make_stateful_transformation(graph, {graph.inputs[3 + i].get_any_name(): graph.outputs[1 + i].get_any_name()
                                               for i in range(caches)})
    request = core.compile_model(graph, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                "INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()

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
    model = merged_model(str(adapter.path), args.threads)
    forms = export(model, cache_dir() / "bench" / "openvino-step" / adapter.sha256[:12])
    reference = torch_greedy(model, prompts, args.tokens) if args.check else []
    del model
    gguf = gguf_file(cfg.models.generator_gguf)
    lora = str(gguf_adapter(adapter, Path(gguf)))
    variants: dict[str, Runner] = {
        "llama.cpp, decode 1 / prompt N threads (the domains' setting)":
            llama_runner(gguf, lora, 1, args.threads, args.tokens),
        "llama.cpp, decode N / prompt N threads": llama_runner(gguf, lora, args.threads, args.threads, args.tokens),
    }
    variants |= {f"OpenVINO {form}, stateful": openvino_runner(path, args.threads, args.tokens)
                 for form, path in forms.items()}
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
