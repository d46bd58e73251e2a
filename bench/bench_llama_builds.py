"""llama.cpp builds side by side: prompt-processing and decode tokens/s of the portable wheel and of each extra build
this CPU can run (generation/llama_cpp_build.py), per GGUF, on the same prompt.

A process loads one build, so each measurement is a fresh subprocess with $DOSSIER_LLAMA_BUILD set; the builds are
interleaved round by round and reported as medians, with the ratio to the portable build measured in the same run.

Run: DOSSIER_CACHE_DIR=.cache .venv/bin/python bench/bench_llama_builds.py [--rounds 3] [--prompt-tokens 800]
     [--tokens 32] [--threads 2] [--gguf PATH ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# the measuring child: prefill of a fixed prompt, then greedy decode, on the build its environment selects
CHILD = r"""
import json, sys, time
from generation.llama_cpp_build import select_build
build = select_build()
from llama_cpp import Llama
gguf, n_prompt, n_new, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = Llama(model_path=gguf, n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False)
text = "中华人民共和国刑法第二百六十四条 盗窃公私财物，数额较大的，或者多次盗窃、入户盗窃、携带凶器盗窃、扒窃的，" * 40
tokens = llm.tokenize(text.encode())[:n_prompt]
started = time.perf_counter(); llm.eval(tokens); prefill = time.perf_counter() - started
started = time.perf_counter()
for _ in range(n_new):
    llm.eval([llm.sample(temp=0)])
decode = time.perf_counter() - started
print(json.dumps({"build": build.name, "prefill_tps": len(tokens) / prefill, "decode_tps": n_new / decode}))
"""


def measure(build: str, gguf: Path, args: argparse.Namespace) -> dict:
    env = {**os.environ, "DOSSIER_LLAMA_BUILD": build}
    env.pop("LLAMA_CPP_LIB_PATH", None)
    done = subprocess.run([sys.executable, "-c", CHILD, str(gguf), str(args.prompt_tokens), str(args.tokens),
                           str(args.threads)], env=env, capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    from core.hardware import cpu_flags
    from generation.llama_cpp_build import bindings_version, builds_root, installed_builds
    from models.registry import gguf_file, is_fetched

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=800)
    parser.add_argument("--tokens", type=int, default=32, help="decoded tokens")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gguf", type=Path, nargs="*", help="default: the fetched Qwen2.5-Coder GGUFs")
    args = parser.parse_args()
    ggufs = args.gguf or [Path(gguf_file(name)) for name in ("qwen2.5-coder-0.5b-instruct-gguf",
                                                              "qwen2.5-coder-1.5b-instruct-gguf") if is_fetched(name)]
    extra = installed_builds(builds_root(), bindings_version())
    runnable = ["portable"] + [b.name for b in extra if b.needs <= cpu_flags()]
    if len(runnable) == 1:
        print("only the portable build runs here (make llama-cpp-avx512 adds one where the CPU has AVX-512)")
    print(f"load average {os.getloadavg()[0]:.1f}; {args.prompt_tokens}-token prompt, {args.tokens} decoded tokens, "
          f"{args.threads} thread(s), medians of {args.rounds} interleaved rounds\n")
    print("| GGUF | build | prefill tok/s | decode tok/s | prefill vs portable | decode vs portable |")
    print("|---|---|---|---|---|---|")
    # round by round over every (GGUF, build), so a change in the machine's load falls on all of them alike
    samples: dict[Path, dict[str, list[dict]]] = {gguf: {name: [] for name in runnable} for gguf in ggufs}
    for _ in range(args.rounds):
        for gguf in ggufs:
            for name in runnable:
                samples[gguf][name].append(measure(name, gguf, args))
    for gguf in ggufs:
        base = {k: statistics.median(s[k] for s in samples[gguf]["portable"]) for k in ("prefill_tps", "decode_tps")}
        for name in runnable:
            med = {k: statistics.median(s[k] for s in samples[gguf][name]) for k in ("prefill_tps", "decode_tps")}
            label = {"model": gguf.parent.name, "generator": f"{gguf.parents[2].name}/{gguf.parents[1].name}"}.get(
                gguf.stem, gguf.stem)  # a registry model's dir, a bundle's folder, else the file's name
            print(f"| {label} | {name} | {med['prefill_tps']:.0f} | {med['decode_tps']:.1f} | "
                  f"{med['prefill_tps'] / base['prefill_tps']:.2f}x | {med['decode_tps'] / base['decode_tps']:.2f}x |")
    print(f"\nload average after {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
