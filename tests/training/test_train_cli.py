"""The `dossier train` commands end to end on the tiny model: a charges SFT run, `evaluate --json` (only the JSON
on stdout), `merge`, `launch --dry-run` handing accelerate the right arguments, and `plan` checking the GPU recipes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import main
from training.launch import ACCELERATE_CONFIGS, CONFIGS_DIR

CHARGES = str(CONFIGS_DIR / "sft_legal_charges.toml")
TINY = ["--set", "train.precision='fp32'", "--set", "train.batch_size=2", "--set", "data.limit=6",
        "--set", "lora.layers=[]", "--set", "lora.r=4", "--set", "train.learning_rate=1e-2",
        "--set", "train.logging_steps=1"]


@pytest.fixture(scope="module")
def charges_run(tiny_lm_dir, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("charges") / "run"
    code = main(["train", "sft", "--domain", "legal", "--recipe", CHARGES, "--model", str(tiny_lm_dir),
                 "--max-steps", "2", "--output", str(run), *TINY])
    assert code == 0
    return run


def test_sft_run_directory_holds_config_report_losses_and_adapter(charges_run: Path) -> None:
    config = json.loads((charges_run / "config.json").read_text())
    assert config["recipe"]["train"]["max_steps"] == 2 and config["recipe"]["data"]["limit"] == 6
    assert json.loads((charges_run / "data_report.json").read_text())["kept"] == 6
    assert (charges_run / "adapter" / "adapter_config.json").is_file()
    metrics = json.loads((charges_run / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["peak_rss_mib"] > 0 and metrics["cpu_time_s"] > 0
    assert len((charges_run / "loss.jsonl").read_text().splitlines()) >= 2


def test_evaluate_json_prints_only_the_result(charges_run: Path, capsys) -> None:
    capsys.readouterr()
    code = main(["train", "evaluate", "--domain", "legal", "--task", "charges", "--run", str(charges_run),
                 "--limit", "3", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"task", "n", "base", "tuned"} and result["task"] == "charges" and result["n"] == 3
    assert set(result["base"]) == set(result["tuned"]) >= {"accuracy", "micro_f1"}
    rows = (charges_run / "eval" / "charges-tuned.jsonl").read_text().splitlines()
    assert len(rows) == 3 and {"id", "gold", "reply", "predicted"} <= set(json.loads(rows[0]))


def test_evaluate_rerun_reuses_the_replies(charges_run: Path, capsys) -> None:
    argv = ["train", "evaluate", "--domain", "legal", "--task", "charges", "--run", str(charges_run), "--limit", "3",
            "--json"]
    main(argv)
    first = capsys.readouterr().out
    cache = charges_run / "eval" / "charges-base.replies.json"
    stamp = cache.stat().st_mtime_ns
    assert main(argv) == 0
    assert capsys.readouterr().out == first and cache.stat().st_mtime_ns == stamp
    assert main([*argv[:-3], "--limit", "2", "--json", "--models", "base"]) == 0  # a subset: all answered already
    subset = json.loads(capsys.readouterr().out)
    assert set(subset) == {"task", "n", "base"} and subset["n"] == 2 and cache.stat().st_mtime_ns == stamp
    assert main([*argv[:-3], "--limit", "4", "--json", "--models", "base"]) == 0  # one new prompt: generated
    assert len(json.loads(cache.read_text())["replies"]) == 4


def test_evaluate_never_scores_training_records(charges_run: Path, legal) -> None:
    from eval.splits import split_of

    rows = (charges_run / "eval" / "charges-base.jsonl").read_text().splitlines()
    assert all(split_of(json.loads(r)["id"]) == "test" for r in rows)


def test_merge_command_checks_logits(charges_run: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["train", "merge", "--domain", "legal", "--run", str(charges_run), "--prompts", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["max_abs_diff"] < 1e-3
    assert (charges_run / "merged" / "config.json").is_file()


def test_recipe_for_another_step_is_refused(tiny_lm_dir, capsys) -> None:
    code = main(["train", "dpo", "--domain", "legal", "--recipe", CHARGES, "--model", str(tiny_lm_dir)])
    assert code == 2 and "dossier train sft" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(ACCELERATE_CONFIGS))
def test_accelerate_configs_parse(name: str) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS_DIR / ACCELERATE_CONFIGS[name]))
    assert config.num_processes >= 2 and config.distributed_type.name in ("MULTI_GPU", "DEEPSPEED", "FSDP")
    if config.distributed_type.name == "DEEPSPEED":
        ds_file = Path(config.deepspeed_config["deepspeed_config_file"])
        assert (CONFIGS_DIR.parents[1] / ds_file).is_file()


@pytest.mark.parametrize("name", sorted(ACCELERATE_CONFIGS))
def test_launch_dry_run_hands_accelerate_the_right_arguments(name: str, capsys) -> None:
    from accelerate.commands.launch import launch_command_parser

    step = ["sft", "--domain", "legal", "--recipe", CHARGES, "--max-steps", "5"]
    code = main(["train", "launch", "--accelerate-config", name, "--num-processes", "4", "--dry-run", "--", *step])
    assert code == 0
    argv = capsys.readouterr().out.strip().split(" ")
    assert argv[0].endswith("accelerate") and argv[1] == "launch"
    parsed = launch_command_parser().parse_args(argv[2:])  # accelerate's own parser reads what it would receive
    assert parsed.config_file == str(CONFIGS_DIR / ACCELERATE_CONFIGS[name])
    assert parsed.num_processes == 4 and parsed.module and parsed.training_script == "api"
    assert parsed.training_script_args == ["train", *step]


def test_launch_rejects_unknown_config_and_step(capsys) -> None:
    assert main(["train", "launch", "--accelerate-config", "mpi", "--dry-run", "--", "sft"]) == 2
    assert "deepspeed_zero3" in capsys.readouterr().err
    assert main(["train", "launch", "--accelerate-config", "ddp", "--dry-run", "--", "pretrain"]) == 2


@pytest.mark.parametrize("recipe", ["sft_distill_gpu.toml", "dpo_rag_gpu.toml"])
def test_plan_checks_a_gpu_recipe_without_training(recipe, tiny_lm_dir, sft_file, preference_file, capsys) -> None:
    """The GPU recipes' dry-run check, on the tiny model in place of the 1.5B (CI has no 1.5B GGUF)."""
    data = sft_file if recipe.startswith("sft") else preference_file
    code = main(["train", "plan", "--domain", "medical", "--recipe", str(CONFIGS_DIR / recipe), "--model",
                 str(tiny_lm_dir), "--set", f"data.path={json.dumps(str(data))}", "--processes", "2", "--json"])
    assert code == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["device"] == "cuda" and plan["precision"] == "bf16" and plan["processes"] == 2
    assert plan["data"]["examples"] > 0 and plan["optimizer_steps"] > 0 and plan["memory_mib"]["peak_mib"] > 0
    assert plan["model"]["lowest_trained_layer"] == 0  # every layer: the GPU recipes adapt them all


@pytest.mark.parametrize("step", ["distill", "preferences"])
def test_reply_steps_pin_the_embedding_precision_and_choose_what_a_paste_becomes(step) -> None:
    """A distillation resumed on another CPU must rank the same passages (bf16 and fp32 query vectors break near-ties
    differently), or its reply cache misses: the reply steps take --embedding-precision like `eval answers`."""
    from cli import build_parser
    from domains import load_domain
    from domains.config import with_embedding_precision

    argv = ["train", step, "--domain", "finance", "--recipe", "r.toml", "--out", "o.jsonl",
            "--embedding-precision", "fp32"]
    args = build_parser().parse_args([*argv, "--pasted", "reference"] if step == "distill" else argv)
    assert args.embedding_precision == "fp32" and getattr(args, "pasted", "reference") == "reference"
    if step == "distill":  # the parser's choices (kept light: no import of the module at start-up) are the module's
        from training.generator.self_distill import PASTED

        assert {build_parser().parse_args([*argv, "--pasted", p]).pasted for p in PASTED} == set(PASTED)
        with pytest.raises(SystemExit):
            build_parser().parse_args([*argv, "--pasted", "paraphrase"])
    finance = load_domain("finance")
    assert with_embedding_precision(finance, args.embedding_precision).embedding.precision == "fp32"
    assert with_embedding_precision(finance, None) is finance
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--embedding-precision", "fp16"])
