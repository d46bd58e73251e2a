"""`dossier train launch`: run a recipe under `accelerate launch` with one of the shipped configs.

No home-made distribution code: accelerate (DDP, DeepSpeed ZeRO-2 / ZeRO-3, FSDP) starts one process per GPU,
each running the ordinary `dossier train <step> ...` command; trl's trainers pick the distributed setup up from
the environment accelerate prepares.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import ConfigError

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
ACCELERATE_CONFIGS = {
    "ddp": "ddp.yaml",
    "deepspeed_zero2": "deepspeed_zero2.yaml",
    "deepspeed_zero3": "deepspeed_zero3.yaml",
    "fsdp": "fsdp.yaml",
}
STEPS = ("sft", "reward", "dpo", "kto", "ppo")


def accelerate_config(name: str) -> Path:
    """A shipped config by name (ddp, deepspeed_zero2, deepspeed_zero3, fsdp) or a path to one's own YAML."""
    if name in ACCELERATE_CONFIGS:
        return CONFIGS_DIR / ACCELERATE_CONFIGS[name]
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    raise ConfigError.invalid_choice("--accelerate-config", name, [*ACCELERATE_CONFIGS, "<path to a .yaml>"])


def accelerate_command(config: str, step_args: Sequence[str], num_processes: int = 0) -> list[str]:
    """The argv of `accelerate launch ... -m api train <step> <args>`."""
    if not step_args or step_args[0] not in STEPS:
        raise ConfigError.invalid_choice("train launch: the step to run", step_args[0] if step_args else "", STEPS)
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    command = [accelerate, "launch", "--config_file", str(accelerate_config(config))]
    if num_processes > 0:
        command += ["--num_processes", str(num_processes)]
    return [*command, "-m", "api", "train", *step_args]


def launch(command: Sequence[str], dry_run: bool) -> tuple[str, int]:
    """(the shell-quoted command, its exit code; 0 without running it when `dry_run`)."""
    shown = shlex.join(command)
    if dry_run:
        return shown, 0
    return shown, subprocess.run(list(command), check=False).returncode
