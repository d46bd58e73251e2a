"""Preference data for the reward model, DPO and KTO: validated records in trl's conversational formats.

Sources: a JSONL(.gz) file, or the service's feedback (`<workspace>/feedback/preferences.jsonl`, rows
{"prompt", "chosen", "rejected", "domain", "question", "created"}, and `feedback/kto.jsonl`, rows
{"prompt", "completion", "label"}). A `prompt` is the user turn (a string) or a chat (a list of {role, content}).
For KTO, every preference pair also gives one desirable and one undesirable completion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.paths import domain_workspace
from domains.config import DomainConfig
from eval.evalsets import read_jsonl
from training.args import DataArgs
from training.formatting import FormatReport, RecordError

Chat = list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class PreferencePair:
    prompt: tuple[tuple[str, str], ...]  # (role, content) turns ending with a user turn
    chosen: str
    rejected: str


@dataclass(frozen=True, slots=True)
class KtoExample:
    prompt: tuple[tuple[str, str], ...]
    completion: str
    label: bool  # True: desirable


def feedback_dir(domain: str) -> Path:
    return domain_workspace(domain) / "feedback"


def _prompt_turns(value: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str) and value.strip():
        return (("user", value),)
    if isinstance(value, list) and value and all(isinstance(m, Mapping) for m in value):
        turns = tuple((str(m.get("role")), str(m.get("content") or "")) for m in value)
        if turns[-1][0] == "user" and all(content.strip() for _, content in turns):
            return turns
    raise RecordError("bad_prompt")


def _text(value: Any, reason: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RecordError(reason)
    return value


def to_pair(record: Mapping[str, Any]) -> PreferencePair:
    pair = PreferencePair(
        _prompt_turns(record.get("prompt")),
        _text(record.get("chosen"), "empty_chosen"),
        _text(record.get("rejected"), "empty_rejected"),
    )
    if pair.chosen.strip() == pair.rejected.strip():
        raise RecordError("chosen_equals_rejected")
    return pair


def to_kto(record: Mapping[str, Any]) -> KtoExample:
    label = record.get("label")
    if not isinstance(label, bool):
        raise RecordError("label_not_boolean")
    return KtoExample(_prompt_turns(record.get("prompt")), _text(record.get("completion"), "empty_completion"), label)


def _records(cfg: DomainConfig, data: DataArgs, feedback_file: str) -> Iterable[Mapping[str, Any]]:
    if data.source == "feedback":
        path = feedback_dir(cfg.name) / feedback_file
        if not path.is_file():
            raise ConfigError(f"no feedback yet: {path} does not exist (rate answers in the service first)")
    elif data.source == "file":
        path = Path(data.path) if Path(data.path).is_absolute() else cfg.path(data.path)
        if not path.is_file():
            raise ConfigError(f"data.path: {path} not found")
    else:
        raise ConfigError.invalid_choice("data.source (for preference recipes)", data.source, ["file", "feedback"])
    for n, record in enumerate(read_jsonl(path)):
        if data.limit and n >= data.limit:
            break
        yield record


def load_pairs(cfg: DomainConfig, data: DataArgs) -> tuple[list[PreferencePair], FormatReport]:
    report, pairs, seen = FormatReport(), [], set()
    for n, record in enumerate(_records(cfg, data, "preferences.jsonl")):
        if cfg.name and record.get("domain") not in (None, cfg.name):
            report.drop("other_domain", str(n))
            continue
        try:
            pair = to_pair(record)
        except RecordError as err:
            report.drop(str(err), str(record.get("id", n)))
            continue
        if pair in seen:
            report.drop("duplicate", str(record.get("id", n)))
            continue
        seen.add(pair)
        pairs.append(pair)
        report.kept += 1
    return pairs, report


def load_kto(cfg: DomainConfig, data: DataArgs) -> tuple[list[KtoExample], FormatReport]:
    """KTO rows from kto.jsonl (feedback) or a file of kto rows; preference pairs are split into two rows."""
    report, out = FormatReport(), []
    feedback_file = "kto.jsonl" if data.format != "preference" else "preferences.jsonl"
    for n, record in enumerate(_records(cfg, data, feedback_file)):
        try:
            if "chosen" in record:
                pair = to_pair(record)
                out += [KtoExample(pair.prompt, pair.chosen, True), KtoExample(pair.prompt, pair.rejected, False)]
            else:
                out.append(to_kto(record))
        except RecordError as err:
            report.drop(str(err), str(record.get("id", n)))
            continue
        report.kept += 1
    return out, report


def _chat(turns: Iterable[tuple[str, str]]) -> Chat:
    return [{"role": role, "content": content} for role, content in turns]


def pairs_dataset(pairs: list[PreferencePair]) -> Any:
    """trl's conversational preference format: prompt (chat), chosen / rejected (one assistant turn each)."""
    from datasets import Dataset

    return Dataset.from_list([
        {"prompt": _chat(p.prompt), "chosen": _chat([("assistant", p.chosen)]),
         "rejected": _chat([("assistant", p.rejected)])}
        for p in pairs
    ])


def kto_dataset(rows: list[KtoExample]) -> Any:
    from datasets import Dataset

    return Dataset.from_list([
        {"prompt": _chat(r.prompt), "completion": _chat([("assistant", r.completion)]), "label": r.label}
        for r in rows
    ])


def prompts_dataset(pairs: list[PreferencePair]) -> Any:
    """Prompts only, for online RL (the policy writes its own completions)."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": _chat(p.prompt)} for p in pairs])
