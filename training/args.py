"""A training recipe: small typed sections read from a TOML file, validated, overridable from the command line.

Precedence is defaults < recipe file < CLI overrides (`--set train.learning_rate=1e-4`). Unknown keys and invalid
choices raise `ConfigError` naming the valid ones (the same parser as `domain.toml`). Loading has no side effects.
The sections map onto trl / peft configs in `training.trl_configs` (one function each).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import ConfigError
from core.hardware import Precision
from domains.config_parse import parse_section

Task = Literal["sft", "reward", "dpo", "kto", "ppo"]
Method = Literal["lora", "qlora", "full"]
DataSource = Literal["file", "charges", "rag", "feedback"]  # feedback: the service's rated answers
RecordFormat = Literal["auto", "messages", "alpaca", "sharegpt", "preference", "kto"]


@dataclass(frozen=True, slots=True)
class LoraArgs:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    # only these decoder layers get adapters (empty: all). Adapting the top layers only stops the backward pass
    # there: on a CPU that is most of the step time saved, for little loss on a narrow task.
    layers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1:
            raise ConfigError(f"lora: r and alpha must be >= 1, got r={self.r}, alpha={self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora.dropout: must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ConfigError("lora.target_modules: name at least one module, e.g. ['q_proj', 'v_proj']")
        if any(layer < 0 for layer in self.layers):
            raise ConfigError(f"lora.layers: layer indices are >= 0, got {list(self.layers)}")


@dataclass(frozen=True, slots=True)
class TrainArgs:
    method: Method = "lora"  # qlora needs a CUDA GPU (bitsandbytes 4-bit); full trains every weight
    model: str = ""  # registry name, local path or hub id; empty: the domain's generator
    # a peft LoRA merged into the base before training (DPO after RAG-SFT: the SFT model is both the start and the
    # reference); `dossier train ship` folds both adapters into one
    init_adapter: str = ""
    reward_model: str = ""  # ppo: the trained reward model (a run dir's model/ or a registry name)
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 2
    grad_accum: int = 1
    max_length: int = 256  # tokens per example (prompt + answer)
    warmup_ratio: float = 0.0  # fraction of the total steps, in [0, 1)
    lr_scheduler: Literal["linear", "cosine", "constant"] = "linear"
    logging_steps: int = 1
    save_steps: int = 25  # checkpoint every N optimizer steps, so a stopped run loses little; 0: no checkpoints
    save_total_limit: int = 2
    seed: int = 0
    precision: Precision = "auto"  # auto: bf16 on a GPU or a CPU with native bf16 (AVX-512 BF16 / AMX), else fp32
    threads: int = 1
    gradient_checkpointing: bool = False
    beta: float = 0.1  # dpo / kto: strength of the pull towards the reference model
    # dpo: weight of a likelihood (SFT) loss on the chosen reply beside the preference loss (RPO); 0: plain DPO.
    # DPO alone can raise the chosen-over-rejected margin while the replies it leads to get worse (eval/README)
    sft_weight: float = 0.0
    num_generations: int = 2  # ppo (online RL): completions sampled per prompt
    max_completion_length: int = 32  # ppo: tokens generated per completion

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("train: batch_size and grad_accum must be >= 1")
        if self.learning_rate <= 0:
            raise ConfigError(f"train.learning_rate: must be > 0, got {self.learning_rate}")
        if self.max_length < 16:
            raise ConfigError(f"train.max_length: {self.max_length} is too small (at least 16)")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise ConfigError("train: set epochs > 0 or max_steps > 0")
        if self.sft_weight < 0:
            raise ConfigError(f"train.sft_weight: must be >= 0 (0: plain DPO), got {self.sft_weight}")
        if self.save_steps < 0 or self.threads < 1:
            raise ConfigError("train: save_steps must be >= 0 (0: no checkpoints) and threads >= 1")


@dataclass(frozen=True, slots=True)
class DataArgs:
    source: DataSource = "feedback"
    path: str = ""  # file: relative to the domain folder, or absolute
    format: RecordFormat = "auto"
    evalset: str = ""  # charges / rag: the domain eval set the examples come from
    more_evalsets: tuple[str, ...] = ()  # rag: further sets of the domain with reference answers, same splits
    refusals: int = 0  # rag: abstention examples per source (other domains' questions, in-domain with gold hidden)
    max_answer_chars: int = 360  # rag: the cited target keeps supported sentences up to this many characters
    # rag: "reference" keeps the reference's supported sentences; "clauses" quotes the passage clause each rests on
    target_style: Literal["reference", "clauses"] = "reference"
    # rag: training prompts show the retrieved passages in a seeded order of their own, not best first. Retrieval
    # puts the supporting passage first so often that the first RAG-SFT adapters learned to number markers ([1],
    # then [2], [3] …) instead of pointing at the passage they quote (medical v2: a sentence copied word for word
    # from passage 3, cited [1]). Served prompts keep the retriever's order.
    shuffle_evidence: bool = False
    insert_gold: bool = False  # rag: put a gold document the retriever missed into the evidence (see rag_sft.py)
    splits: tuple[str, ...] = ("train",)  # eval.splits names; never the split a gain is reported on
    limit: int = 0  # 0: every record
    max_input_tokens: int = 192  # charges / rag: the case fact / question is cut to this many tokens
    passages: int = 3  # rag: passages in the prompt
    passage_chars: int = 160  # charges with retrieval: characters kept per passage
    context_filter: Mapping[str, Any] = field(default_factory=dict)  # keep retrieved chunks whose metadata match
    answer_prefix: str = ""  # rag: removed from the start of a reference answer
    answer_stop: str = ""  # rag: a reference answer is cut where this appears (e.g. its own statute quotes)
    # rag: the reference's legal basis follows this word (LawBench: "法律依据"): the target keeps it after the
    # answer, quoted from the passages it rests on (training/generator/cited_targets.py cited_basis)
    basis_after: str = ""
    max_basis_chars: int = 600  # rag: characters of quoted basis kept
    seed: int = 0  # rag fallback: which corpus passages are sampled as negatives

    def __post_init__(self) -> None:
        if self.source == "file" and not self.path:
            raise ConfigError("data.path: required when data.source = 'file'")
        if self.source in ("charges", "rag") and not self.evalset:
            raise ConfigError(f"data.evalset: required when data.source = {self.source!r}")
        if "test" in self.splits:
            raise ConfigError("data.splits: 'test' is held out for reporting; train on 'train' (and 'dev')")


@dataclass(frozen=True, slots=True)
class PromptArgs:
    """Prompt templates of the task (Chinese text lives in the recipe TOML, not in code).
    `user` gets {input}; `user_with_context` gets {context} and {input}."""

    system: str = ""
    user: str = "{input}"
    user_with_context: str = "{context}\n\n{input}"
    context_item: str = "[{n}] {title}\n{text}"  # one retrieved passage in {context}; gets {n}, {title}, {text}
    label_suffix: str = ""  # classification targets: appended to each label (e.g. the charge suffix)
    label_separator: str = "; "  # between labels of a multi-label target


@dataclass(frozen=True, slots=True)
class Recipe:
    task: Task
    name: str = ""
    domain: str = ""  # empty: taken from --domain
    train: TrainArgs = TrainArgs()
    lora: LoraArgs = LoraArgs()
    data: DataArgs = DataArgs()
    prompts: PromptArgs = PromptArgs()

    def __post_init__(self) -> None:
        if self.data.source == "rag" and self.prompts != PromptArgs():
            raise ConfigError("prompts: a RAG recipe (data.source = 'rag') trains on the product's own prompt from "
                              "the domain's domain.toml; remove the [prompts] section")


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.learning_rate=1e-4' -> (['train', 'learning_rate'], 0.0001). Values are TOML; bare words are strings."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected SECTION.KEY=VALUE, e.g. train.max_steps=10")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def merge_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for text in overrides:
        path, value = parse_override(text)
        target = merged
        for part in path[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"override {text!r}: {part} is not a section")
        target[path[-1]] = value
    return merged


def recipe_from_mapping(data: Mapping[str, Any], where: str = "recipe") -> Recipe:
    return parse_section(Recipe, data, where)


def load_recipe(path: Path | str, overrides: Sequence[str] = ()) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path}: file not found (shipped recipes are in training/configs/)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    return recipe_from_mapping(merge_overrides(data, overrides), where=str(path.name))


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """Plain data for the run directory's config.json (tuples become lists)."""
    return dataclasses.asdict(recipe)


def recipe_from_dict(data: Mapping[str, Any]) -> Recipe:
    return recipe_from_mapping(data, where="config.json")
