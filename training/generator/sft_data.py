"""The SFT examples a recipe asks for (`data.source`), tokenized with the loss masked to the answers.

    file     a messages / Alpaca / ShareGPT JSONL(.gz) file (relative to the domain folder, or absolute)
    charges  CAIL case fact -> charge names, from the domain's classification eval set (train / dev splits only)
    rag      question + retrieved passages -> cited answer (training.generator.rag_sft)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.protocols import Message, Retriever
from domains.config import DomainConfig
from eval.evalsets import read_jsonl
from training.args import Recipe
from training.formatting import FormatReport, RecordError, TokenizedChat, format_records, tokenize_chat
from training.generator import charges


def data_path(cfg: DomainConfig, path: str) -> Path:
    candidate = Path(path)
    resolved = candidate if candidate.is_absolute() else cfg.path(path)
    if not resolved.is_file():
        raise ConfigError(f"data.path: {resolved} not found")
    return resolved


def charge_chats(cfg: DomainConfig, recipe: Recipe, tokenizer: Any) -> tuple[list[TokenizedChat], FormatReport]:
    data, prompts = recipe.data, recipe.prompts
    cases = charges.load_cases(cfg, data.evalset, data.splits, limit=data.limit)
    report, out = FormatReport(), []
    for case in cases:
        fact = charges.truncate_tokens(tokenizer, case.fact, data.max_input_tokens)
        answer = Message("assistant", charges.target_text(prompts, case.charges))
        turns = [*charges.prompt_messages(prompts, fact), answer]
        try:
            out.append(tokenize_chat(tokenizer, turns, recipe.train.max_length))
        except RecordError as err:
            report.drop(str(err), case.case_id)
            continue
        report.kept += 1
    return out, report


def build_sft_chats(
    cfg: DomainConfig, recipe: Recipe, tokenizer: Any, retriever: Retriever | None = None
) -> tuple[list[TokenizedChat], FormatReport]:
    data = recipe.data
    match data.source:
        case "file":
            records = read_jsonl(data_path(cfg, data.path))
            if data.limit:
                records = (r for n, r in enumerate(records) if n < data.limit)
            return format_records(records, tokenizer, recipe.train.max_length, data.format)
        case "charges":
            return charge_chats(cfg, recipe, tokenizer)
        case "rag":
            from training.generator.rag_sft import rag_chats

            return rag_chats(cfg, recipe, tokenizer, retriever)
        case _:
            raise ConfigError.invalid_choice("data.source (for sft)", data.source, ["file", "charges", "rag"])
