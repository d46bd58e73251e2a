"""SFT records (OpenAI `messages`, Alpaca, ShareGPT) -> chats -> token ids with the loss masked to assistant turns.

Every record is validated; what is dropped is counted by reason in a `FormatReport`, never silently. Masking works
for any chat template whose renderings are prefix-stable (ChatML / Qwen are): the assistant span of turn i is the
text between `render(turns[:i], add_generation_prompt=True)` and `render(turns[:i+1])`, so it covers the answer
and its end-of-turn token, and nothing of the prompt.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConfigError
from core.protocols import Message

log = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
_SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class RecordError(ValueError):
    """A record that cannot become a training example; the message is the reason counted in the report."""


@dataclass(frozen=True, slots=True)
class TokenizedChat:
    input_ids: tuple[int, ...]
    assistant_masks: tuple[int, ...]  # 1 where the token is part of an assistant turn (it carries loss)


@dataclass(slots=True)
class FormatReport:
    """What happened to every record: kept, or dropped with a reason."""

    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> the first record id dropped for it

    def drop(self, reason: str, record_id: str) -> None:
        self.dropped[reason] += 1
        self.examples.setdefault(reason, record_id)

    def as_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "dropped": dict(self.dropped), "first_dropped": dict(self.examples)}

    def log(self, what: str) -> None:
        log.info("%s: kept %d, dropped %d %s", what, self.kept, sum(self.dropped.values()), dict(self.dropped))


def detect_format(record: Mapping[str, Any]) -> str:
    if "messages" in record:
        return "messages"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record and "output" in record:
        return "alpaca"
    raise RecordError("unknown_format")


def _check_turns(turns: Sequence[Message]) -> list[Message]:
    if not turns:
        raise RecordError("empty_chat")
    for turn in turns:
        if turn.role not in ROLES:
            raise RecordError("bad_role")
        if not turn.content.strip():
            raise RecordError("empty_turn")
    if not any(t.role == "assistant" for t in turns):
        raise RecordError("no_assistant_turn")
    if turns[-1].role != "assistant":
        turns = list(turns)
        while turns and turns[-1].role != "assistant":
            turns.pop()  # a trailing user turn has no answer to learn from
    return list(turns)


def _message(role: Any, content: Any) -> Message:
    if not isinstance(content, str):
        raise RecordError("content_not_text")
    return Message(role=role, content=content)


def to_messages(record: Mapping[str, Any], fmt: str = "auto") -> list[Message]:
    """One record -> validated chat turns. Raises RecordError(reason)."""
    fmt = detect_format(record) if fmt == "auto" else fmt
    if fmt == "messages":
        raw = record.get("messages")
        if not isinstance(raw, list) or not all(isinstance(m, Mapping) for m in raw):
            raise RecordError("messages_not_a_list")
        turns = [_message(m.get("role"), m.get("content")) for m in raw]
    elif fmt == "sharegpt":
        raw = record.get("conversations")
        if not isinstance(raw, list) or not all(isinstance(m, Mapping) for m in raw):
            raise RecordError("conversations_not_a_list")
        turns = [_message(_SHAREGPT_ROLES.get(str(m.get("from")), "?"), m.get("value")) for m in raw]
    elif fmt == "alpaca":
        prompt = "\n\n".join(str(record.get(k) or "") for k in ("instruction", "input") if record.get(k))
        turns = [_message("system", record["system"])] if record.get("system") else []
        turns += [_message("user", prompt), _message("assistant", record.get("output"))]
    else:
        raise ConfigError.invalid_choice("data.format", fmt, ["auto", "messages", "sharegpt", "alpaca"])
    return _check_turns(turns)


def _render(tokenizer: Any, turns: Sequence[Message], generation_prompt: bool = False) -> str:
    chat = [{"role": t.role, "content": t.content} for t in turns]
    return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer: Any, turns: Sequence[Message]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered chat and the character spans [start, end) of its assistant turns."""
    text = _render(tokenizer, turns)
    spans = []
    for i, turn in enumerate(turns):
        if turn.role != "assistant":
            continue
        before = _render(tokenizer, turns[:i], generation_prompt=True)
        through = _render(tokenizer, turns[: i + 1])
        if not (through.startswith(before) and text.startswith(through)):
            raise RecordError("template_not_prefix_stable")
        spans.append((len(before), len(through)))
    return text, spans


def tokenize_chat(tokenizer: Any, turns: Sequence[Message], max_length: int) -> TokenizedChat:
    """Token ids of the templated chat, cut to `max_length`, with a mask over the assistant tokens."""
    text, spans = assistant_spans(tokenizer, turns)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"][:max_length], enc["offset_mapping"][:max_length]
    mask = tuple(int(any(s <= start < e for s, e in spans)) for start, _ in offsets)
    if not any(mask):
        raise RecordError("no_assistant_tokens_within_max_length")
    return TokenizedChat(tuple(ids), mask)


def format_records(
    records: Iterable[Mapping[str, Any]], tokenizer: Any, max_length: int, fmt: str = "auto"
) -> tuple[list[TokenizedChat], FormatReport]:
    """Records -> tokenized chats; dropped records are counted by reason."""
    report, out = FormatReport(), []
    for n, record in enumerate(records):
        record_id = str(record.get("id") or n)
        try:
            out.append(tokenize_chat(tokenizer, to_messages(record, fmt), max_length))
        except RecordError as err:
            report.drop(str(err), record_id)
            continue
        report.kept += 1
    return out, report


def to_dataset(chats: Sequence[TokenizedChat]) -> Any:
    """A `datasets.Dataset` that trl's SFTTrainer takes as already tokenized (it builds labels from the mask)."""
    from datasets import Dataset

    return Dataset.from_dict(
        {"input_ids": [list(c.input_ids) for c in chats], "assistant_masks": [list(c.assistant_masks) for c in chats]}
    )
