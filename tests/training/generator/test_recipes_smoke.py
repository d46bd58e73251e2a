"""Two training steps of each recipe on the tiny model: the trained parameters change and the loss is finite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from train_helpers import safetensors_weights, smoke_recipe

from training.generator.dpo import run_dpo
from training.generator.kto import run_kto
from training.generator.reward import run_reward
from training.generator.sft import run_sft


def _finite_losses(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses and all(math.isfinite(x) for x in losses)
    return losses


def _lora_b_moved(adapter: Path) -> None:
    """peft initialises every lora_B to zero: after training at least one must have moved."""
    weights = safetensors_weights(adapter)
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and any(w.abs().sum() > 0 for w in lora_b)


def test_sft_lora_two_steps_change_adapter(medical, tiny_lm_dir, sft_file, tmp_path) -> None:
    recipe = smoke_recipe("sft", tiny_lm_dir, {"source": "file", "path": str(sft_file)})
    run, metrics = run_sft(medical, recipe, output=tmp_path / "run")
    assert metrics["steps"] == 2 and math.isfinite(metrics["last_loss"])
    _finite_losses(run)
    _lora_b_moved(run / "adapter")
    report = json.loads((run / "data_report.json").read_text())
    assert report["kept"] == 6 and report["dropped"] == {"no_assistant_turn": 1}
    assert 0 < metrics["trainable_params"] < metrics["total_params"]


def test_sft_full_fine_tuning_changes_base_weights(medical, tiny_lm_dir, sft_file, tmp_path) -> None:
    recipe = smoke_recipe("sft", tiny_lm_dir, {"source": "file", "path": str(sft_file)}, method="full")
    run, metrics = run_sft(medical, recipe, output=tmp_path / "run")
    before, after = safetensors_weights(tiny_lm_dir), safetensors_weights(run / "model")
    changed = [n for n in before if n in after and not torch.equal(before[n], after[n].to(before[n].dtype))]
    assert changed and metrics["trainable_params"] == metrics["total_params"]
    _finite_losses(run)


def test_reward_model_two_steps_change_score_head(medical, tiny_classifier_dir, preference_file, tmp_path) -> None:
    recipe = smoke_recipe("reward", tiny_classifier_dir, {"source": "file", "path": str(preference_file)})
    run, metrics = run_reward(medical, recipe, output=tmp_path / "run")
    _finite_losses(run)
    _lora_b_moved(run / "adapter")
    before, merged = safetensors_weights(tiny_classifier_dir), safetensors_weights(run / "model")
    assert not torch.equal(before["score.weight"], merged["score.weight"])
    report = json.loads((run / "data_report.json").read_text())
    assert report["kept"] == 8 and report["dropped"] == {"chosen_equals_rejected": 1, "bad_prompt": 1}


def test_dpo_two_steps(medical, tiny_lm_dir, preference_file, tmp_path) -> None:
    recipe = smoke_recipe("dpo", tiny_lm_dir, {"source": "file", "path": str(preference_file)})
    run, metrics = run_dpo(medical, recipe, output=tmp_path / "run")
    assert metrics["steps"] == 2
    _finite_losses(run)
    _lora_b_moved(run / "adapter")


def test_dpo_with_a_likelihood_term_on_the_chosen_side(medical, tiny_lm_dir, preference_file, tmp_path) -> None:
    from training.trl_configs import dpo_config

    recipe = smoke_recipe("dpo", tiny_lm_dir, {"source": "file", "path": str(preference_file)}, sft_weight=0.5)
    config = dpo_config(recipe.train, tmp_path / "cfg")
    assert list(config.loss_type) == ["sigmoid", "sft"] and list(config.loss_weights) == [1.0, 0.5]
    run, metrics = run_dpo(medical, recipe, output=tmp_path / "run")
    assert metrics["steps"] == 2
    _finite_losses(run)
    _lora_b_moved(run / "adapter")


def test_kto_two_steps_from_pairs(medical, tiny_lm_dir, preference_file, tmp_path) -> None:
    data = {"source": "file", "path": str(preference_file), "format": "preference"}
    recipe = smoke_recipe("kto", tiny_lm_dir, data)
    run, metrics = run_kto(medical, recipe, output=tmp_path / "run")
    assert metrics["steps"] == 2
    _finite_losses(run)
    _lora_b_moved(run / "adapter")


def _every_lora_b_moved(adapter: Path) -> None:
    lora_b = {name: w for name, w in safetensors_weights(adapter).items() if "lora_B" in name}
    assert lora_b and all(w.abs().sum() > 0 for w in lora_b.values()), [n for n, w in lora_b.items() if not w.any()]


def test_gradient_checkpointing_with_top_layer_lora_still_trains(medical, tiny_lm_dir, sft_file, preference_file,
                                                                 tmp_path) -> None:
    """The GPU DPO recipe checkpoints activations while the lower layers are frozen: the checkpointed blocks' input
    then needs no gradient, and with reentrant checkpointing the adapters inside would get none. Every adapter of
    the top layer must move, for SFT and for DPO."""
    overrides = ["lora.layers=[1]"]
    sft = smoke_recipe("sft", tiny_lm_dir, {"source": "file", "path": str(sft_file)}, overrides,
                       gradient_checkpointing=True)
    run, _ = run_sft(medical, sft, output=tmp_path / "sft")
    _every_lora_b_moved(run / "adapter")
    dpo = smoke_recipe("dpo", tiny_lm_dir, {"source": "file", "path": str(preference_file)}, overrides,
                       gradient_checkpointing=True)
    run, _ = run_dpo(medical, dpo, output=tmp_path / "dpo")
    _every_lora_b_moved(run / "adapter")
