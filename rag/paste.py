"""Is a reply a paste: long, and mostly verbatim runs copied from the passages it was given?

The citation check passes a pasted passage, because the passage holds it, so citation precision cannot tell a paste
from an answer. Two places need to: the service says so in every answer's trace (`paste_trace`; the chat app then
labels the reply as quoted text), and `dossier eval answers` reports the share of pasted replies beside precision.
Distillation needs it too: as a training target a paste teaches the model to paste (on FinQA, whose references are
extractions such as a stock code or a date, median 5 characters, 45 of the 70 answer targets distilled from the base
model were pastes, and the adapter trained on them lost answer overlap; eval/README.md, "Finance"). A reply counts as
pasted when it is over `min_chars` characters (markers and blanks not counted) and at least `min_copied` of its
characters lie inside runs of `run_chars` or more characters that a passage holds word for word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.citations import MARKER, with_title
from rag.prompting import Evidence

_BLANKS = re.compile(r"\s+")


@dataclass(frozen=True)
class PasteRule:
    min_chars: int = 100  # a short reply is an answer whatever it copies: "688388" is in the passage too
    min_copied: float = 0.8
    run_chars: int = 12  # shorter common runs are phrases any two texts on one topic share


def _plain(text: str) -> str:
    return _BLANKS.sub("", MARKER.sub("", text))


def copied_fraction(reply: str, passages: list[str], run_chars: int = PasteRule.run_chars) -> float:
    """The share of the reply's characters (markers and blanks left out) inside a `run_chars`-character window
    that some passage holds word for word."""
    text = _plain(reply)
    if len(text) < run_chars:
        return 0.0
    windows = {p[i:i + run_chars] for p in map(_plain, passages) for i in range(len(p) - run_chars + 1)}
    covered = [False] * len(text)
    for start in range(len(text) - run_chars + 1):
        if text[start:start + run_chars] in windows:
            covered[start:start + run_chars] = [True] * run_chars
    return sum(covered) / len(text)


def is_pasted(reply: str, evidence: Evidence, rule: PasteRule = PasteRule()) -> bool:
    return bool(paste_trace(reply, evidence, rule)["pasted"])


def paste_trace(reply: str, evidence: Evidence, rule: PasteRule = PasteRule()) -> dict[str, float | bool]:
    """{"copied_share": the share of the reply copied word for word from its passages (titles included),
    "pasted": whether that makes it a paste by `rule`}."""
    passages = [with_title(hit) for hit in evidence.hits]
    share = copied_fraction(reply, passages, rule.run_chars)
    return {"copied_share": round(share, 3),
            "pasted": len(_plain(reply)) > rule.min_chars and share >= rule.min_copied}
