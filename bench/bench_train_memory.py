"""Peak memory of full fine-tuning vs LoRA vs QLoRA on the same model, batch and data (a few SFT steps each, each
in its own process), with trainable-parameter counts and `dossier train plan`'s estimate beside each measured peak;
writes memory_report.json and memory.png.

    .venv/bin/python bench/bench_train_memory.py [--model qwen2.5-coder-0.5b-instruct] [--steps 2] [--out DIR] \
        [--gradient-checkpointing]

QLoRA needs a CUDA GPU (bitsandbytes 4-bit): on a CPU machine its row says skipped.

On a GPU machine that real weights cannot reach (the device tool carries 64 MiB), measure a model of the real
shapes with random weights: memory depends on the shapes, not the values.

    python bench/bench_train_memory.py --export-shapes shapes/qwen0.5b       # here: config + tokenizer, ~11 MB
    python bench/bench_train_memory.py --random-weights --model shapes/qwen0.5b   # there: random bf16 weights first

The 1.5B generator's shapes come from its GGUF (`dossier models fetch qwen2.5-coder-1.5b-instruct-gguf`):
`--model qwen2.5-coder-1.5b-instruct --export-shapes shapes/qwen1.5b`.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.args import load_recipe  # noqa: E402
from training.generator.memory_report import format_table, memory_report  # noqa: E402
from training.launch import CONFIGS_DIR  # noqa: E402

SHAPE_FILES = ("config.json", "generation_config.json",  # the model's shapes, then its tokenizer
               "tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def export_shapes(model: str, out: Path) -> Path:
    """The model's config and tokenizer without its weights: copied from its transformers dir, or read from the GGUF
    it is converted from (the 1.5B generator, before its ~8 GB conversion)."""
    from training.model_source import model_source

    source = model_source(model)
    out.mkdir(parents=True, exist_ok=True)
    if source.gguf:
        from transformers import AutoConfig, AutoTokenizer

        AutoConfig.from_pretrained(source.path, **source.kwargs()).save_pretrained(out)
        AutoTokenizer.from_pretrained(source.path, **source.kwargs()).save_pretrained(out)
        return out
    folder = Path(source.path)
    for name in SHAPE_FILES:
        if (folder / name).is_file():
            shutil.copy2(folder / name, out / name)
    return out


def with_random_weights(shapes: Path, out: Path, seed: int = 0) -> Path:
    """A model dir of `shapes`' config with random bf16 weights (and its tokenizer), written to `out`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(shapes), dtype=torch.bfloat16)
    model.save_pretrained(out)
    for name in SHAPE_FILES[2:]:
        if (shapes / name).is_file():
            shutil.copy2(shapes / name, out / name)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--methods", default="full,lora,qlora")
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="recompute activations in the backward pass (every method): the lever for LoRA's peak")
    parser.add_argument("--export-shapes", type=Path, metavar="DIR",
                        help="write --model's config and tokenizer (no weights) to DIR and stop")
    parser.add_argument("--random-weights", action="store_true",
                        help="--model is a shapes dir: measure a model of its shapes with random weights")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "dossier-bench-train-memory")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.export_shapes:
        print(export_shapes(args.model, args.export_shapes))
        return 0
    if args.random_weights:
        args.model = str(with_random_weights(Path(args.model), args.out / "random-weights-model"))
    # the charge-prediction recipe (same data, sequence length and LoRA shape as the measured gain), all layers
    recipe = load_recipe(CONFIGS_DIR / "sft_legal_charges.toml", [
        f'train.model="{args.model}"', f"train.batch_size={args.batch_size}", "data.limit=16", "lora.layers=[]",
        f"train.gradient_checkpointing={str(args.gradient_checkpointing).lower()}",
    ])
    rows = memory_report("legal", recipe, args.out, args.methods.split(","), args.steps)
    print(f"model {args.model}, batch {args.batch_size}, max_length {recipe.train.max_length}, {args.steps} steps, "
          f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}")
    print(format_table(rows))
    measured = {r["label"]: r for r in rows if r.get("peak_rss_mib")}
    if "full" in measured and "lora" in measured:
        full, lora = measured["full"], measured["lora"]
        print(f"peak RSS LoRA / full: {lora['peak_rss_mib'] / full['peak_rss_mib']:.2f}; "
              f"training growth LoRA / full: {lora['delta_rss_mib'] / max(full['delta_rss_mib'], 1):.2f}; "
              f"trainable LoRA / full: {lora['trainable_params'] / full['trainable_params']:.4f}")
        if full.get("cuda_peak_mib") and lora.get("cuda_peak_mib"):
            print(f"CUDA peak LoRA / full: {lora['cuda_peak_mib'] / full['cuda_peak_mib']:.2f}")
    print(f"plot: {args.out / 'memory.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
