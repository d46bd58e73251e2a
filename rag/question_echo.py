"""A sentence that restates the question, dropped from the served answer.

Small generators open (or pad) an answer by copying the user's question, often under a marker: "[1] 公司未宣布破产，
对员工宣称提前放假……我们员工可以要求公司经济补偿。" The marker then presents the user's own words as what the
passage says. In the base 0.5B model's answers over the RAGAS test questions, such copies were 24 of 107 unsupported
(sentence, passage) pairs in legal consultation and 17 of 142 in medical Huatuo (none of 49 in finance FinQA).
A copied question tells the reader nothing and its citation is false, so it is removed rather than flagged.

A sentence is an echo when one unbroken run of the question covers at least `ECHO_MIN_VERBATIM` of its letters and
digits (`rag.support.verbatim_share`), it has at least `ECHO_MIN_CHARS` of them, and no passage it cites
supports it (`rag.support.judge`). The last condition keeps a short answer that happens to repeat the question's
words ("醉酒驾驶机动车的，处拘役。[1]" for "醉酒驾驶机动车的，处什么刑罚？" is supported, so it stays). A finance
answer that names its entity ("赵天才高管变动事件对应的高管姓名是赵天才。") covers 85 % and stays too.

A marker that opens a line heads the block under it (`rag.citations.pieces`), so it is kept when its own sentence
goes; a heading marker left with nothing under it is then dropped.
"""

from __future__ import annotations

import re

from rag.citations import MARKER, cited_markers, pieces
from rag.prompting import Evidence
from rag.support import compact, judge, verbatim_share

ECHO_MIN_VERBATIM = 0.9
ECHO_MIN_CHARS = 6  # "我应该怎样做?" (6) is an echo; a 3-character fragment is too short to call one
_LONE_MARKERS = re.compile(rf"^[ \t]*(?:(?:{MARKER.pattern})[ \t]*)+$")


def is_question_echo(claim: str, cited: list[int], question: str, evidence: Evidence) -> bool:
    """True when `claim` (markers removed) is a copy of `question` that none of its cited passages supports."""
    if len(compact(claim)) < ECHO_MIN_CHARS or verbatim_share(claim, question) < ECHO_MIN_VERBATIM:
        return False
    for n in cited:
        hit = evidence.passage(n)
        if hit is not None and judge(claim, hit.chunk.title, hit.chunk.text).supported:
            return False
    return True


def strip_question_echoes(text: str, question: str, evidence: Evidence) -> tuple[str, list[str]]:
    """`text` without its sentences that restate `question` (`is_question_echo`), and those sentences."""
    kept: list[str] = []
    echoes: list[str] = []
    for piece, claim, cited in pieces(text):
        if not claim or not is_question_echo(claim, cited, question, evidence):
            kept.append(piece)
            continue
        echoes.append(claim)
        opening = MARKER.match(piece.lstrip(" \t"))  # the line-opening marker rag.citations.pieces reads
        heading = opening.group(0) if opening and cited_markers(opening.group(0), evidence) else ""
        kept.append(heading + ("\n" if piece.endswith("\n") else ""))
    if not echoes:
        return text, echoes
    return _drop_empty_headings("".join(kept)), echoes


def _drop_empty_headings(text: str) -> str:
    """Remove a line of markers alone whose block (up to a blank line or the next marker line) holds nothing."""
    lines = text.split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        following = lines[i + 1].lstrip() if i + 1 < len(lines) else ""
        if _LONE_MARKERS.match(line) and (not following or MARKER.match(following)):
            continue  # its block is empty: a blank line, the end, or the next block's marker follows
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()
