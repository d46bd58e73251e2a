"""Recipe loading: defaults < file < overrides; invalid values name what is valid; every shipped recipe loads."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from core import hardware
from core.errors import ConfigError
from training.args import load_recipe, parse_override, recipe_from_mapping
from training.trl_configs import dpo_config, lora_config, sft_config

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
# generator recipes carry a top-level `task`; the reranker / embedder recipes beside them have their own loader
RECIPES = sorted(p for p in CONFIGS.glob("*.toml") if "task" in tomllib.loads(p.read_text(encoding="utf-8")))


def test_the_recipes_named_in_the_readme_ship() -> None:
    names = {p.name for p in RECIPES}
    assert {"sft_legal_charges.toml", "sft_legal_rag.toml", "reward_medical.toml", "dpo_medical.toml",
            "kto_medical.toml", "ppo_tiny.toml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_loads_and_maps_onto_trl(path: Path, tmp_path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.name and recipe.task in ("sft", "reward", "dpo", "kto", "ppo")
    config = sft_config(recipe.train, tmp_path) if recipe.task == "sft" else dpo_config(recipe.train, tmp_path)
    assert config.learning_rate == recipe.train.learning_rate and config.save_steps == recipe.train.save_steps
    assert lora_config(recipe.lora).r == recipe.lora.r


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('task = "sft"\nname = "x"\n[train]\nlearning_rate = 1e-4\n[data]\nsource = "file"\npath = "a"\n')
    recipe = load_recipe(path, ["train.learning_rate=5e-5", "train.max_steps=3", "lora.target_modules=['q_proj']"])
    assert recipe.train.learning_rate == 5e-5 and recipe.train.max_steps == 3
    assert recipe.lora.target_modules == ("q_proj",) and recipe.train.batch_size == 2  # default kept


def test_override_values_are_toml_or_bare_strings() -> None:
    assert parse_override("train.model=qwen-0.5b") == (["train", "model"], "qwen-0.5b")
    assert parse_override("data.splits=['train','dev']") == (["data", "splits"], ["train", "dev"])
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        parse_override("nonsense")


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"task": "rlhf"}, "choose one of: dpo, kto, ppo, reward, sft"),
        ({"task": "sft", "train": {"method": "int3"}}, "choose one of: full, lora, qlora"),
        ({"task": "sft", "train": {"learnin_rate": 1e-4}}, "unknown key"),
        ({"task": "sft", "train": {"batch_size": 0}}, "batch_size"),
        ({"task": "sft", "train": {"batch_size": "2"}}, "expected int"),
        ({"task": "sft", "lora": {"r": 0}}, "r and alpha"),
        ({"task": "sft", "data": {"source": "file"}}, "data.path"),
        ({"task": "sft", "data": {"source": "charges", "evalset": "x", "splits": ["train", "test"]}}, "held out"),
        ({"task": "sft", "data": {"source": "rag"}}, "data.evalset"),
        ({"task": "sft", "train": {"precision": "fp16x"}}, "choose one of: auto, bf16, fp32"),
        ({"name": "no task"}, "missing required key"),
    ],
)
def test_invalid_recipes_raise_config_errors_that_help(mapping, message) -> None:
    with pytest.raises(ConfigError, match=message):
        recipe_from_mapping(mapping)


def test_missing_recipe_file_points_at_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="training/configs"):
        load_recipe(tmp_path / "nope.toml")


@pytest.mark.parametrize(("native", "bf16"), [(False, False), (True, True)])
def test_auto_precision_trains_in_bf16_only_where_the_cpu_has_it(native: bool, bf16: bool, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from training.model_io import torch_dtype

    # the machine is injected: the test means the same on any CPU
    monkeypatch.setattr(hardware, "cuda_available", lambda: False)
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)
    train = recipe_from_mapping({"task": "sft", "name": "x", "data": {"source": "file", "path": "a"}}).train
    assert train.precision == "auto"
    assert sft_config(train, tmp_path).bf16 is bf16
    assert torch_dtype(train.precision) == (torch.bfloat16 if bf16 else torch.float32)
    assert torch_dtype("bf16") == torch.bfloat16 and torch_dtype("fp32") == torch.float32  # explicit choices stay


def test_save_steps_zero_means_no_checkpoint_not_even_the_last(tmp_path: Path) -> None:
    """transformers writes a checkpoint at the last step under "steps" whatever save_steps is: 0 must say "no"."""
    recipe = load_recipe(RECIPES[0], ["train.save_steps=0"])
    assert str(sft_config(recipe.train, tmp_path).save_strategy.value) == "no"
    assert str(sft_config(load_recipe(RECIPES[0]).train, tmp_path).save_strategy.value) == "steps"
    with pytest.raises(ConfigError, match="save_steps"):
        load_recipe(RECIPES[0], ["train.save_steps=-1"])
