"""Memory report on the tiny model: full fine-tuning trains every weight, LoRA a small share; QLoRA without a
GPU is reported as skipped; the report and the plot are written."""

from __future__ import annotations

import json
import mmap
import time

import pytest
from train_helpers import smoke_recipe

from training.generator.memory_report import format_table, memory_report
from training.memory import PeakMemory


def test_peak_memory_sees_an_allocation() -> None:
    size = 64 * 1024 * 1024
    with PeakMemory(interval_s=0.01) as peak:
        # A fresh anonymous mapping, not a bytearray: malloc may reuse memory earlier tests freed but the process
        # still holds, and then RSS does not grow. Touching every page of a new mapping always makes it resident.
        block = mmap.mmap(-1, size)
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        # A sampler sees only what lives longer than its interval: hold the block for many intervals (on a busy
        # 2-core machine the sampling thread may wait a while for its turn).
        deadline = time.monotonic() + 2.0
        while peak.peak_rss - peak.start_rss < 32 * 1024 * 1024 and time.monotonic() < deadline:
            time.sleep(0.02)
        block.close()
    assert peak.report()["delta_rss_mib"] > 32


def test_qlora_without_gpu_is_reported_skipped_and_plotted(tiny_lm_dir, sft_file, tmp_path) -> None:
    recipe = smoke_recipe("sft", tiny_lm_dir, {"source": "file", "path": str(sft_file)})
    rows = memory_report("medical", recipe, tmp_path, methods=["qlora"])
    assert rows[0]["ok"] is False and "CUDA GPU" in rows[0]["skipped"]
    assert rows[0]["estimated_peak_mib"] > 0  # the plan's estimate stands even where the run cannot
    assert (tmp_path / "memory.png").is_file() and (tmp_path / "memory_report.json").is_file()


@pytest.mark.slow  # two spawned training processes: ~2 min on the shared 2-core machine
def test_full_vs_lora_vs_qlora(tiny_lm_dir, sft_file, tmp_path) -> None:
    recipe = smoke_recipe("sft", tiny_lm_dir, {"source": "file", "path": str(sft_file)})
    rows = {r["label"]: r for r in memory_report("medical", recipe, tmp_path, steps=2)}
    assert rows["full"]["ok"] and rows["lora"]["ok"], rows
    assert rows["full"]["trainable_params"] == rows["full"]["total_params"]
    assert rows["lora"]["trainable_params"] < rows["full"]["trainable_params"] / 10
    # the tiny model's optimizer state is a few MiB, under RSS noise: the full-vs-LoRA gap is measured on the
    # real model by bench/bench_train_memory.py; here each method must report a real peak
    assert all(rows[m]["peak_rss_mib"] >= rows[m]["start_rss_mib"] > 0 for m in ("full", "lora"))
    assert "CUDA GPU" in rows["qlora"]["skipped"]
    assert (tmp_path / "memory.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "memory_report.json").read_text())
    assert [r["label"] for r in saved["rows"]] == ["full", "lora", "qlora"]
    assert "| qlora |" in format_table(saved["rows"])
    estimated = [rows[m]["estimated_peak_mib"] for m in ("qlora", "lora", "full")]
    assert estimated == sorted(estimated) and len(set(estimated)) == 3
    assert not list(tmp_path.rglob("checkpoint-*"))  # a measurement writes no checkpoint, not even at its last step


def test_qlora_preparation_keeps_the_weights_in_their_dtype_and_frozen(tiny_lm_dir) -> None:
    """peft's preparation upcast every non-4-bit weight to fp32 (embeddings and lm_head included); ours does not."""
    import torch
    from transformers import AutoModelForCausalLM

    from training.model_io import prepare_for_kbit

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir, dtype=torch.bfloat16)
    prepare_for_kbit(model, gradient_checkpointing=True)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not any(p.requires_grad for p in model.parameters())
    assert model.is_activation_checkpointing
    embeddings = model.get_input_embeddings()(torch.tensor([[1, 2]]))
    assert embeddings.requires_grad  # checkpointed blocks get an input that carries a gradient
