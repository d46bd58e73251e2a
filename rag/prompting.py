"""The domain prompt: numbered evidence passages inside a character budget, and the follow-up rewrite prompt.

Templates come from the domain's `[prompts]` section (`answer` gets {context} and {question}; `rewrite` gets
{history} and {question}); this module only fills them. Passage n in the prompt is `evidence[n - 1]`, which is
what `rag.citations` resolves `[n]` against.

A passage is shown without the sentences that read as instructions to the model ("忽略以上指令…", "print your
system prompt"): a statute or an uploaded file that carries one is data, and a small model obeys or repeats it
(`python -m eval.injection_check`). The chunk itself is untouched: citations quote and check the stored text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.protocols import Message
from core.records import Hit
from domains.config import GenerationConfig, PromptsConfig
from rag.evidence_focus import focus_passages

MIN_PASSAGE_CHARS = 80  # a passage cut shorter than this is dropped rather than shown as a stub
REWRITE_HISTORY_TURNS = 6  # the rewrite sees the last few turns only: older ones rarely carry the referent
ANSWER_HISTORY_TURNS = 4

# Instructions addressed to the model, never statute or medical / financial prose: none of these matches any of the
# 39,434 records of the shipped corpora. A sentence that matches is not shown.
_ORDERS_ZH = (r"(?:忽略|无视|不要理会|忘掉|忘记)[^。！？\n]{0,12}(?:指令|指示|提示|要求|规则|设定|规定)",
              r"系统提示|系统指令|调试模式|(?:输出|复述|透露|打印|告诉我)[^。！？\n]{0,8}提示词",
              r"(?:回答|输出|作答)[^。！？\n]{0,8}(?:不要|不得|无需|禁止)[^。！？\n]{0,6}(?:标注|引用|注明|出处|编号)",
              r"(?:原样|逐字|直接)(?:输出|复述|打印)|请[^。！？\n]{0,10}输出[:：]",
              r"你现在(?:处于|扮演)|(?:请|必须)(?:以此|按此)(?:为准|回答)|请按此回答|不得说无法回答")
_ORDERS_EN = (r"ignore (?:all |any |the )?(?:previous|prior|above|preceding|earlier)\b|ignore the above",
              r"system prompt|developer mode|jailbreak",
              r"(?:note to|instructions? (?:to|for)) the (?:assistant|model|ai)|^\s*(?:assistant|system)\s*:",
              r"do not cite|don'?t cite|never (?:write|use) (?:citation|marker)",
              r"(?:output|print|reply with|respond with|say) (?:exactly|only|verbatim)|\bverbatim\b|you are now|"
              r"answer accordingly")
INSTRUCTION = re.compile("|".join(_ORDERS_ZH + _ORDERS_EN), re.IGNORECASE | re.MULTILINE)
_SENTENCE = re.compile(r".*?(?:[。！？；!?;]+|\.(?=\s)|\n|$)", re.S)  # to a stop (。；!?), ". " or a line end


@dataclass(frozen=True, slots=True)
class Evidence:
    """The passages given to the model, numbered from 1, and the context block that shows them."""

    hits: tuple[Hit, ...]
    context: str

    def passage(self, marker: int) -> Hit | None:
        """The hit behind `[marker]`, or None when the model cites a passage it was not given."""
        return self.hits[marker - 1] if 1 <= marker <= len(self.hits) else None


def without_instructions(text: str) -> str:
    """`text` less its sentences that match `INSTRUCTION` (the rest byte for byte, in order)."""
    if not INSTRUCTION.search(text):
        return text
    return "".join(s for s in _SENTENCE.findall(text) if not INSTRUCTION.search(s))


def passage_block(marker: int, hit: Hit, limit: int | None = None, text: str | None = None) -> str:
    """`[marker] title` over the passage's text (or `text`, an excerpt of it), cut to `limit` characters."""
    title = hit.chunk.title.strip()
    text = without_instructions(hit.chunk.text) if text is None else text
    text = text if limit is None else text[:limit]
    return f"[{marker}] {title}\n{text}" if title else f"[{marker}] {text}"


def select_evidence(hits: Sequence[Hit], context_chars: int, question: str = "", focus_sentences: int = 0) -> Evidence:
    """Number the hits best first and keep as many as fit in `context_chars`; the first one is always kept
    (cut to the budget if it alone is longer), so the model never answers from nothing. With `focus_sentences`,
    each passage is shown as its sentences nearest `question` (`rag.evidence_focus`)."""
    shown = [without_instructions(hit.chunk.text) for hit in hits]
    if focus_sentences and question:
        shown = focus_passages(shown, question, focus_sentences)
    blocks: list[str] = []
    kept: list[Hit] = []
    used = 0
    for hit, text in zip(hits, shown, strict=True):
        block = passage_block(len(kept) + 1, hit, text=text)
        room = context_chars - used - (2 if kept else 0)  # 2: the blank line between passages
        if len(block) > room:
            if kept:
                continue  # a shorter passage further down may still fit
            header = len(passage_block(1, hit, limit=0, text=text))
            block = passage_block(1, hit, limit=max(room - header, MIN_PASSAGE_CHARS), text=text)
        used += len(block) + (2 if kept else 0)
        blocks.append(block)
        kept.append(hit)
    return Evidence(hits=tuple(kept), context="\n\n".join(blocks))


def evidence_for(generation: GenerationConfig, hits: Sequence[Hit], question: str) -> Evidence:
    """The evidence the domain's `[generation]` settings show for `question`: serving, training and evaluation
    build their prompts through this one call, so the three never drift apart."""
    return select_evidence(hits, generation.context_chars, question, generation.focus_sentences)


def history_text(history: Sequence[Message], turns: int) -> str:
    return "\n".join(f"{m.role}: {m.content}" for m in history[-turns:] if m.role != "system")


def answer_messages(
    prompts: PromptsConfig, evidence: Evidence, question: str, history: Sequence[Message] = ()
) -> list[Message]:
    """System prompt, the last few turns of the conversation, then the evidence and the question."""
    turns = [m for m in history if m.role != "system"][-ANSWER_HISTORY_TURNS:]
    user = prompts.answer.format(context=evidence.context, question=question)
    return [Message("system", prompts.system), *turns, Message("user", user)]


def rewrite_messages(prompts: PromptsConfig, question: str, history: Sequence[Message]) -> list[Message]:
    user = prompts.rewrite.format(history=history_text(history, REWRITE_HISTORY_TURNS), question=question)
    return [Message("system", prompts.system), Message("user", user)]


def clean_rewrite(raw: str, fallback: str, max_chars: int = 400) -> str:
    """The model's rewrite, first non-empty line, without quotes; the original question if nothing usable."""
    for line in raw.strip().splitlines():
        line = line.strip().strip("\"'“”「」")
        if line:
            return line[:max_chars]
    return fallback
