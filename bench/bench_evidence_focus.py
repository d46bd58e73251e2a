"""Evidence focus and the first token: the service path of one domain with each evidence passage whole and shown as
its N sentences nearest the question (`[generation] focus_sentences`, rag/evidence_focus.py).

Prints, per variant, the prompt's tokens (median, by the generator's own tokenizer), the first token p50 / p95
(call to first streamed text: retrieval + prefill + one step), decode tokens/s and the ratio of the first token to the
whole-passage prompt's, measured in one run, interleaved (each round runs every variant on each question in turn),
the KV cache emptied before each call so that each prompt pays its own prefill. What focusing costs in answer
quality is read from `dossier eval answers --focus-sentences N` (eval/README.md), not here.

Run: DOSSIER_CACHE_DIR=.cache OMP_NUM_THREADS=1 .venv/bin/python bench/bench_evidence_focus.py --domain finance
     [--evalset fincuge_finqa] [--split dev] [--questions 6] [--focus 0,2,3] [--rounds 2] [--tokens 16]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_first_token import Timings, chat_text, interleaved, load_average, pipeline_stream, raw_llama  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default="finance")
    parser.add_argument("--evalset", default="fincuge_finqa")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--questions", type=int, default=6, help="the set's first N questions of the split")
    parser.add_argument("--focus", default="0,2,3", help="focus_sentences values to compare; 0 = whole passages")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=16, help="new tokens per timed answer")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from domains import load_domain
    from domains.config import with_focus_sentences
    from eval.answer_items import set_items
    from eval.splits import leave_out_of_bank
    from models.registry import gguf_file
    from rag.build import build_pipeline
    from rag.pipeline import RagPipeline

    cfg = leave_out_of_bank(load_domain(args.domain), {args.split})
    items, _ = set_items(cfg, args.evalset, frozenset({args.split}), limit=args.questions)
    questions = [item.question for item in items]
    print(f"load average at start {load_average()}; {len(questions)} {args.evalset} {args.split} questions, "
          f"{cfg.name}", flush=True)
    service = build_pipeline(cfg, backend="llama-cpp")
    llm = service.generator.load()._llm
    llm.set_cache(None)  # each call stands for a new question: no state saved from an earlier one
    counter = raw_llama(gguf_file(cfg.models.generator_gguf), vocab_only=True)
    pipes = {}
    for n in (int(v) for v in args.focus.split(",")):
        pipe = RagPipeline(with_focus_sentences(cfg, n), service.retriever, service.generator)
        pipe.params = replace(pipe.params, max_new_tokens=args.tokens)
        pipes["whole passages" if n == 0 else f"focus {n} sentences"] = pipe
    tokens = {name: statistics.median(len(counter.tokenize(chat_text(pipe.prompt(q)).encode(), special=True))
                                 for q in questions)
              for name, pipe in pipes.items()}
    timings = Timings(lambda text: len(counter.tokenize(text.encode(), add_bos=False)))
    # the variants share one llama context and their prompts share the system prompt and the question's first
    # passage heading: empty the KV before each call, so that each pays its own prefill
    interleaved(timings, {name: (pipeline_stream(pipe, llm.reset), questions) for name, pipe in pipes.items()},
                args.rounds)
    first = {name: statistics.median(s[0] for s in rows) for name, rows in timings.samples.items()}
    baseline = next(iter(first.values()))
    print(f"\n{'variant':24s} {'prompt tokens':>13s} {'first p50 s':>11s} {'x first':>8s}")
    for name in pipes:
        print(f"{name:24s} {tokens[name]:13.0f} {first[name]:11.2f} {first[name] / baseline:8.2f}")
    timings.table(f"evidence focus, {cfg.name} service path; up to {args.tokens} new tokens")


if __name__ == "__main__":
    main()
