"""Parity of the tuned adapter's two forms at the level of next-token distributions: llama.cpp (the base GGUF + the
LoRA GGUF the service loads) against transformers (the base + the peft adapter merged at load), base and tuned.

Answer scores compare the forms through greedy decoding, where one near-tie rewrites the rest of an answer, so their
intervals are wide (30 legal questions could not show 2 points for citation precision). Here every form reads the
same token ids (the product's prompt for a test question and the tuned llama.cpp form's own greedy reply), and each
reply token is scored by each form:
- across forms, base against base and tuned against tuned: how often the top token agrees, and KL a token. If the
  tuned pair drifts no more than the base pair, converting and applying the adapter adds nothing to what the two
  runtimes already differ by (the same dequantised Q4_K_M weights, computed at the CPU's transformers precision,
  bf16 where it is native, against llama.cpp's kernels);
- within each form, base against tuned: the adapter's own effect (reply NLL, where it changes the top token), and
  whether the two forms make the same changes.

The generators are built by the product (`rag.build_generation.build_generator`), so the files are the service's;
llama.cpp is reopened on those files with every position's logits kept, which the service does not need.

Run: DOSSIER_CACHE_DIR=.cache OMP_NUM_THREADS=2 .venv/bin/python bench/bench_adapter_parity.py --domain legal \
     [--evalset lawbench_consultation] [--questions 20] [--reply-tokens 160] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_CTX = 2048  # llama.cpp keeps n_ctx x vocab float32 logits with every position kept: 1.2 GB at 2,048


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float32)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


_llama_cache: dict[tuple[str, str], Any] = {}  # one context per (GGUF, LoRA), reused across sequences


def llama_logprobs(gguf: str, lora: str, ids: list[int], start: int, threads: int) -> np.ndarray:
    """Log-probabilities of positions start-1 .. len-2 (each predicts the next token) under llama.cpp: the build
    `main` chose for this CPU before anything imported llama_cpp, with the service's flash-attention setting."""
    from llama_cpp import Llama

    from generation.llama_cpp_gen import FLASH_ATTN

    llm = _llama_cache.get((gguf, lora))
    if llm is None:
        llm = Llama(model_path=gguf, lora_path=lora or None, n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads,
                    logits_all=True, flash_attn=FLASH_ATTN, verbose=False)
        _llama_cache[(gguf, lora)] = llm
    llm.reset()
    llm.eval(ids)
    return log_softmax(np.asarray(llm.scores[start - 1 : len(ids) - 1]))


def torch_logprobs(model: Any, ids: list[int], start: int) -> np.ndarray:
    import torch

    with torch.inference_mode():
        hidden = model.model(torch.tensor([ids])).last_hidden_state[0, start - 1 : len(ids) - 1]
        logits = model.lm_head(hidden).float().numpy()
    return log_softmax(logits)


def kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p || q) per row, from log-probabilities."""
    return (np.exp(p) * (p - q)).sum(axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default="legal")
    parser.add_argument("--evalset", default="lawbench_consultation")
    parser.add_argument("--split", default="test")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--reply-tokens", type=int, default=160, help="greedy reply length cap (tuned llama.cpp)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from generation.llama_cpp_build import select_build

    select_build()  # once, before the first llama_cpp import, as the service does: it decides which libraries load
    from domains import load_domain
    from eval.evalsets import load_evalset
    from rag.build import build_pipeline
    from rag.build_generation import build_generator
    from rag.generator_choice import with_generator

    tuned_cfg = with_generator(load_domain(args.domain), "tuned")
    base_cfg = with_generator(tuned_cfg, "base")
    forms = {(runtime, model): build_generator(cfg, runtime)
             for model, cfg in (("base", base_cfg), ("tuned", tuned_cfg))
             for runtime in ("llama-cpp", "transformers")}
    pipe = build_pipeline(tuned_cfg, backend="llama-cpp")
    writer = forms[("llama-cpp", "tuned")].load()
    records = load_evalset(tuned_cfg, args.evalset, splits={args.split}).records
    sequences: list[tuple[list[int], int]] = []
    tokenizer = None
    for record in records:
        if len(sequences) == args.questions:
            break
        messages = pipe.prompt(record.query)
        reply = writer.generate(messages, replace(pipe.params, max_new_tokens=args.reply_tokens))  # the domain's
        if tokenizer is None:
            tokenizer = forms[("transformers", "tuned")].load()._tokenizer
        chat = [{"role": m.role, "content": m.content} for m in messages]
        text = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
        ids = prompt_ids + reply_ids
        if len(reply_ids) < 2 or len(ids) > N_CTX:
            continue
        sequences.append((ids, len(prompt_ids)))
    writer._llm = None  # noqa: SLF001 - its replies are written; the scoring reopens the same files
    print(f"{len(sequences)} sequences: prompt tokens median "
          f"{statistics.median(s for _, s in sequences):.0f}, reply tokens "
          f"{sum(len(i) - s for i, s in sequences)} in all", flush=True)

    # one sequence at a time under all four forms, keeping per token only what the report reads: a sequence's
    # full log-probabilities are tokens x 152k vocabulary, ~0.6 MB a token in float32
    import torch

    torch.set_num_threads(args.threads)
    models = {key: gen.load()._model for key, gen in forms.items() if key[0] == "transformers"}  # noqa: SLF001
    stats: dict[str, list[np.ndarray]] = {}
    t0 = time.perf_counter()
    for ids, start in tqdm(sequences, desc="scoring", unit="seq"):
        lp = {key: llama_logprobs(gen.gguf_path, gen.lora_path, ids, start, args.threads)
              for key, gen in forms.items() if key[0] == "llama-cpp"}
        lp |= {key: torch_logprobs(model, ids, start) for key, model in models.items()}
        gold = np.asarray(ids[start:])
        rows = np.arange(len(gold))
        for key, values in lp.items():
            stats.setdefault(f"top {key}", []).append(values.argmax(axis=1))
            stats.setdefault(f"gold {key}", []).append(values[rows, gold])
        for model in ("base", "tuned"):
            stats.setdefault(f"kl {model}", []).append(kl(lp[("llama-cpp", model)], lp[("transformers", model)]))
    print(f"scored in {time.perf_counter() - t0:.0f} s", flush=True)
    report({key: np.concatenate(values) for key, values in stats.items()})
    for llm in _llama_cache.values():
        llm.close()  # now, not in the interpreter's shutdown, where llama-cpp-python's destructor fails
    _llama_cache.clear()


def report(stats: dict[str, np.ndarray]) -> None:
    def top(runtime: str, model: str) -> np.ndarray:
        return stats[f"top {(runtime, model)}"]

    def gold(runtime: str, model: str) -> np.ndarray:
        return stats[f"gold {(runtime, model)}"]

    print(f"\n{len(stats['kl base'])} reply tokens scored by each form")
    print(f"{'pair':46s} {'top-1 agrees':>12s} {'KL a token':>11s} {'KL p99':>8s}")
    for model in ("base", "tuned"):
        agree = np.mean(top("llama-cpp", model) == top("transformers", model))
        divergence = stats[f"kl {model}"]
        print(f"{'llama.cpp vs transformers, ' + model:46s} {agree:12.4f} {divergence.mean():11.5f} "
              f"{np.percentile(divergence, 99):8.4f}")
    print(f"\n{'form':14s} {'reply NLL base':>14s} {'tuned':>7s} {'top-1 changed by the adapter':>29s}")
    for runtime in ("llama-cpp", "transformers"):
        changed = np.mean(top(runtime, "base") != top(runtime, "tuned"))
        print(f"{runtime:14s} {-gold(runtime, 'base').mean():14.4f} {-gold(runtime, 'tuned').mean():7.4f} "
              f"{changed:29.4f}")
    changed_l = top("llama-cpp", "base") != top("llama-cpp", "tuned")
    changed_t = top("transformers", "base") != top("transformers", "tuned")
    both = changed_l & changed_t
    same = both & (top("llama-cpp", "tuned") == top("transformers", "tuned"))
    print(f"\npositions where the adapter changes the top token: llama.cpp {int(changed_l.sum())}, transformers "
          f"{int(changed_t.sum())}, both {int(both.sum())}, both to the same token {int(same.sum())}")
    delta_l = gold("llama-cpp", "tuned") - gold("llama-cpp", "base")
    delta_t = gold("transformers", "tuned") - gold("transformers", "base")
    print(f"the adapter's change to each reply token's log-probability, llama.cpp against transformers: correlation "
          f"{np.corrcoef(delta_l, delta_t)[0, 1]:.4f}, mean {delta_l.mean():+.4f} against {delta_t.mean():+.4f}")


if __name__ == "__main__":
    main()
