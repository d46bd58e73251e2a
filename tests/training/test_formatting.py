"""Chat formatting: every record format becomes the same chat, and only assistant tokens carry loss."""

from __future__ import annotations

import pytest

from core.protocols import Message
from training.formatting import RecordError, format_records, to_messages, tokenize_chat


@pytest.fixture(scope="module")
def tokenizer(tiny_lm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_lm_dir)


def test_three_formats_give_the_same_chat() -> None:
    messages = {"messages": [{"role": "user", "content": "问"}, {"role": "assistant", "content": "答"}]}
    sharegpt = {"conversations": [{"from": "human", "value": "问"}, {"from": "gpt", "value": "答"}]}
    alpaca = {"instruction": "问", "input": "", "output": "答"}
    expected = [Message("user", "问"), Message("assistant", "答")]
    assert to_messages(messages) == to_messages(sharegpt) == to_messages(alpaca) == expected


def test_alpaca_input_and_system_are_kept() -> None:
    turns = to_messages({"instruction": "判断罪名", "input": "事实", "output": "盗窃罪", "system": "助理"})
    assert turns == [Message("system", "助理"), Message("user", "判断罪名\n\n事实"), Message("assistant", "盗窃罪")]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"text": "plain"}, "unknown_format"),
        ({"messages": [{"role": "user", "content": "只有问题"}]}, "no_assistant_turn"),
        ({"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "a"}]}, "empty_turn"),
        ({"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "a"}]}, "bad_role"),
        ({"messages": "not a list"}, "messages_not_a_list"),
        ({"conversations": [{"from": "human", "value": 3}, {"from": "gpt", "value": "a"}]}, "content_not_text"),
    ],
)
def test_bad_records_name_their_reason(record, reason) -> None:
    with pytest.raises(RecordError, match=reason):
        to_messages(record)


def test_loss_mask_covers_exactly_the_assistant_turns(tokenizer) -> None:
    turns = [Message("system", "系统提示"), Message("user", "第一问"), Message("assistant", "第一答"),
             Message("user", "第二问"), Message("assistant", "第二答")]
    chat = tokenize_chat(tokenizer, turns, max_length=512)
    masked = tokenizer.decode([t for t, m in zip(chat.input_ids, chat.assistant_masks, strict=True) if m])
    unmasked = tokenizer.decode([t for t, m in zip(chat.input_ids, chat.assistant_masks, strict=True) if not m])
    assert masked == "第一答<|im_end|>\n第二答<|im_end|>\n"
    assert "第一问" in unmasked and "第二问" in unmasked and "系统提示" in unmasked
    assert "答" not in unmasked.replace("<|im_start|>assistant", "")


def test_trailing_user_turn_is_dropped_and_truncation_is_reported(tokenizer) -> None:
    records = [
        {"id": "ok", "messages": [{"role": "user", "content": "问"}, {"role": "assistant", "content": "答"},
                                  {"role": "user", "content": "追问没有回答"}]},
        {"id": "long", "messages": [{"role": "user", "content": "很长的问题" * 50},
                                    {"role": "assistant", "content": "答"}]},
        {"id": "bad", "text": "x"},
    ]
    chats, report = format_records(records, tokenizer, max_length=32)
    assert report.kept == 1 and len(chats) == 1
    assert report.dropped == {"no_assistant_tokens_within_max_length": 1, "unknown_format": 1}
    assert report.examples["unknown_format"] == "bad"
    assert "追问" not in tokenizer.decode(chats[0].input_ids)
