"""Merge check on a trained tiny adapter, and two steps of online RL (GRPO) against a tiny reward model."""

from __future__ import annotations

import json
import math

import pytest
import torch
from train_helpers import safetensors_weights, smoke_recipe

from training.export.merge import MergeMismatch, merge_adapter
from training.generator.ppo import run_ppo
from training.generator.sft import run_sft

PROMPTS = ["盗窃公私财物，数额较大的，", "故意伤害他人身体的，处三年以下有期徒刑", "短"]


@pytest.fixture(scope="module")
def tiny_adapter(medical, tiny_lm_dir, sft_file, tmp_path_factory):
    recipe = smoke_recipe("sft", tiny_lm_dir, {"source": "file", "path": str(sft_file)})
    run, _ = run_sft(medical, recipe, output=tmp_path_factory.mktemp("sft") / "run")
    return run / "adapter"


def test_merge_matches_base_plus_adapter(tiny_lm_dir, tiny_adapter, tmp_path) -> None:
    report = merge_adapter(str(tiny_lm_dir), tiny_adapter, tmp_path / "merged", PROMPTS)
    assert report.passed and report.max_abs_diff < 1e-3 and report.top1_agreement == 1.0
    assert report.positions > len(PROMPTS)  # padding excluded, every real position compared
    merged = safetensors_weights(tmp_path / "merged")
    assert not any("lora" in name for name in merged)  # folded in, not carried along
    base = safetensors_weights(tiny_lm_dir)
    moved = [n for n in base if n in merged and not torch.equal(base[n], merged[n])]
    assert any("q_proj" in n for n in moved)
    assert json.loads((tmp_path / "merged" / "merge_report.json").read_text())["passed"] is True


def test_merge_refuses_a_mismatch(tiny_lm_dir, tiny_adapter, tmp_path) -> None:
    with pytest.raises(MergeMismatch):
        merge_adapter(str(tiny_lm_dir), tiny_adapter, tmp_path / "merged", PROMPTS, tolerance=-1.0)
    assert not (tmp_path / "merged" / "model.safetensors").exists()


def test_online_rl_two_steps_with_reward_model(medical, tiny_lm_dir, tiny_classifier_dir, preference_file,
                                               tmp_path) -> None:
    recipe = smoke_recipe("ppo", tiny_lm_dir, {"source": "file", "path": str(preference_file)},
                          reward_model=str(tiny_classifier_dir), max_completion_length=8, num_generations=2,
                          batch_size=1)
    run, metrics = run_ppo(medical, recipe, output=tmp_path / "run")
    assert metrics["steps"] == 2
    rows = [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines()]
    assert any("reward" in r or "rewards/Qwen2ForSequenceClassification/mean" in r for r in rows)
    assert all(math.isfinite(r["loss"]) for r in rows if "loss" in r)
    weights = safetensors_weights(run / "adapter")
    assert any(w.abs().sum() > 0 for n, w in weights.items() if "lora_B" in n)
