"""`dossier train plan`: a recipe checked without training, on the tiny models. The parameter counts on the meta
device are peft's own on the real model, the data are measured before max_length cuts them, the memory terms move
the way each method moves them, and a registry model fetched only as a GGUF is read from the GGUF."""

from __future__ import annotations

import dataclasses
import json

import pytest
from train_helpers import smoke_recipe

from training.memory_estimate import MIB, estimate_memory
from training.model_shape import ModelShape, model_shape
from training.plan import data_size, format_plan, optimizer_steps, plan_recipe


def _real_lora_counts(model_dir, recipe) -> tuple[int, int]:
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from training.trl_configs import lora_config

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), lora_config(recipe.lora))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    base = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    return trainable, base


@pytest.mark.parametrize("layers", [(), (1,)])
def test_meta_counts_match_peft_on_the_loaded_model(tiny_lm_dir, sft_file, layers) -> None:
    recipe = smoke_recipe("sft", tiny_lm_dir, {"source": "file", "path": str(sft_file)},
                          [f"lora.layers={list(layers)}"])
    shape = model_shape(str(tiny_lm_dir), recipe)
    assert (shape.trainable_params, shape.total_params) == _real_lora_counts(tiny_lm_dir, recipe)
    assert shape.lowest_trained_layer == (layers[0] if layers else 0)
    assert 0 < shape.quantizable_params < shape.total_params  # decoder Linears, not the embeddings


def test_full_method_trains_every_weight(tiny_lm_dir, sft_file) -> None:
    recipe = smoke_recipe("sft", tiny_lm_dir, {"source": "file", "path": str(sft_file)}, method="full")
    shape = model_shape(str(tiny_lm_dir), recipe)
    assert shape.trainable_params == shape.total_params and shape.lowest_trained_layer == 0


def test_sft_data_is_measured_uncut(tiny_lm_dir, sft_file, medical) -> None:
    from training.formatting import to_messages, tokenize_chat
    from training.model_io import load_tokenizer

    recipe = smoke_recipe("sft", tiny_lm_dir, {"source": "file", "path": str(sft_file)}, max_length=16)
    tokenizer = load_tokenizer(str(tiny_lm_dir))
    size = data_size(medical, recipe, tokenizer)
    rows = [json.loads(line) for line in sft_file.read_text(encoding="utf-8").splitlines()][:6]
    expected = [len(tokenize_chat(tokenizer, to_messages(r), 10_000).input_ids) for r in rows]
    assert list(size.lengths) == expected and size.examples == 6 and sum(size.dropped.values()) == 1
    assert size.over(16) == sum(n > 16 for n in expected) > 0
    plan = plan_recipe(medical, recipe, device="cpu")
    assert plan.batch_tokens == 2 * 16  # batch 2, padded to the longest example, cut at max_length
    assert any("longer than max_length 16" in w for w in plan.warnings)


def test_preference_pairs_count_both_sides(tiny_lm_dir, preference_file, medical) -> None:
    recipe = smoke_recipe("dpo", tiny_lm_dir, {"source": "file", "path": str(preference_file)}, max_length=4096,
                          precision="auto")
    plan = plan_recipe(medical, recipe, device="cuda", budget_mib=0.001)
    assert plan.data.examples == 8 and plan.data.dropped and plan.data.sequences_per_example == 2
    assert plan.batch_tokens == 2 * 2 * max(plan.data.lengths)
    assert plan.precision.value == "bf16"  # planned for a GPU with bf16, whatever this machine has
    assert any("over the" in w and "budget" in w for w in plan.warnings)
    text = format_plan(plan)
    assert "estimated peak" in text and "optimizer steps" in text
    assert json.loads(json.dumps(plan.as_dict()))["data"]["examples"] == 8


def test_qlora_planned_for_a_cpu_is_warned(tiny_lm_dir, sft_file, medical) -> None:
    recipe = smoke_recipe("sft", tiny_lm_dir, {"source": "file", "path": str(sft_file)}, method="qlora")
    assert any("needs a CUDA GPU" in w for w in plan_recipe(medical, recipe, device="cpu").warnings)


def test_optimizer_steps() -> None:
    recipe = smoke_recipe("sft", "m", {"source": "file", "path": "x"}, max_steps=-1, epochs=2.0, batch_size=2,
                          grad_accum=4)
    assert optimizer_steps(recipe, 17, processes=1) == 2 * 3  # ceil(17 / 8) per epoch
    assert optimizer_steps(recipe, 17, processes=2) == 2 * 2
    assert optimizer_steps(dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, max_steps=5)),
                           17, 1) == 5


SHAPE = ModelShape(ref="m", layers=24, hidden=896, intermediate=4864, heads=14, kv_heads=2, vocab=151_936,
                   total_params=630_000_000, trainable_params=8_800_000, quantizable_params=358_000_000,
                   lowest_trained_layer=0)


def test_memory_terms_move_the_way_each_method_moves_them() -> None:
    full = estimate_memory(SHAPE, "full", "bf16", 400)
    lora = estimate_memory(SHAPE, "lora", "bf16", 400)
    qlora = estimate_memory(SHAPE, "qlora", "bf16", 400)
    assert qlora.peak_mib < lora.peak_mib < full.peak_mib
    assert lora.weights_mib == pytest.approx(630_000_000 * 2 / MIB)
    assert lora.optimizer_mib == pytest.approx(8_800_000 * 16 / MIB)
    assert full.optimizer_mib == pytest.approx(630_000_000 * 6 / MIB)  # bf16 gradient + two bf16 moments
    assert estimate_memory(SHAPE, "lora", "fp32", 400).weights_mib == pytest.approx(2 * lora.weights_mib)
    top = dataclasses.replace(SHAPE, lowest_trained_layer=18)
    assert estimate_memory(top, "lora", "bf16", 400).activations_mib == pytest.approx(lora.activations_mib / 4)
    checkpointed = estimate_memory(SHAPE, "lora", "bf16", 400, gradient_checkpointing=True)
    assert checkpointed.activations_mib < lora.activations_mib / 5
    assert estimate_memory(SHAPE, "lora", "bf16", 800).logits_mib == pytest.approx(2 * lora.logits_mib)


def test_a_model_fetched_only_as_gguf_is_read_from_the_gguf(tmp_path, monkeypatch, tiny_lm_dir, sft_file) -> None:
    """The 1.5B generator's GPU recipe is checked on machines that hold only its GGUF: the registry name resolves
    to the GGUF's metadata when the converted transformers dir is absent."""
    pytest.importorskip("gguf")
    from tiny_gguf import write_scripted_gguf
    from tiny_models import build_tiny_tokenizer

    from models.registry import COMPLETE_MARKER

    monkeypatch.setenv("DOSSIER_CACHE_DIR", str(tmp_path))
    folder = tmp_path / "models" / "qwen2.5-coder-1.5b-instruct-gguf"
    folder.mkdir(parents=True)
    build_tiny_tokenizer(folder)
    write_scripted_gguf(folder, folder / "model.gguf", "答")
    (folder / COMPLETE_MARKER).write_text("{}", encoding="utf-8")
    recipe = smoke_recipe("sft", "qwen2.5-coder-1.5b-instruct", {"source": "file", "path": str(sft_file)})
    shape = model_shape("qwen2.5-coder-1.5b-instruct", recipe)
    assert (shape.layers, shape.hidden, shape.heads, shape.kv_heads) == (1, 64, 4, 2)
    assert shape.trainable_params > 0
