"""A reference answer turned into the reply a grounded model should give: only the sentences the evidence
supports, each followed by the marker of the passage that supports it.

A leading attribution ("根据《民法典》第一千零八十四条的规定，") is cut from a target sentence: the marker already
names the source, and a 0.5B model taught to write law names and article numbers writes wrong ones under real
citations (the first legal adapter did: "根据《民法典》第一千零八十七条的规定，支票的持票人……").

Support is the product's own check (`rag.support.judge`, the one serving and evaluation use): a sentence keeps a
marker only when the passage holds its content, its penalties, quantities and article numbers. A sentence that no
passage supports is left out of the target rather than kept uncited, so the model learns to say what its evidence
says and nothing more; a reference with no supported sentence gives no example at all (the caller counts it).

A reference that ends with its legal basis ("……。法律依据：《中华人民共和国票据法》第八十一条支票是……", LawBench
consultation) keeps it as the passages give it (`cited_basis`): each passage's heading, taken from the passage, and
the clauses the basis matches, word for word, each cited. That is the form a lawyer's answer takes, and the article
numbers come from the evidence, never from the model's memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.prompting import Evidence
from rag.support import char_bigrams, judge

_TAG = re.compile(r"<[^>]{1,20}>")
_NUM = "[零〇一二两三四五六七八九十百千0-9]+"
ATTRIBUTION = re.compile(rf"^(?:根据|依据|依照|按照|参照|据)?《[^》]{{1,40}}》"
                         rf"(?:第{_NUM}条(?:之[一二三四五六七八九十]+)?)?(?:第{_NUM}款)?(?:第{_NUM}项)?(?:的)?(?:相关|有关)?(?:规定|明确规定)?(?:可知|来看)?[，,：:]\s*")
_SENTENCE = re.compile(r"[^。！？；!?\n]+[。！？；!?]?")
MIN_SENTENCE_CHARS = 6  # shorter pieces ("首先，", "1.") carry no claim worth citing
MIN_PHRASE_CHARS = 2  # a reference that is only a short phrase is still an answer
_SPLIT = re.compile(r"[。！？；!?\n]")
# The product counts a sentence supported from 15 % bigram overlap (rag.support.SUPPORT_MIN), lenient on purpose
# for paraphrase in served answers; a training target is held closer to its passage, so the model learns to stay
# near the text rather than at the edge of what the check lets through.
TARGET_MIN_OVERLAP = 0.3


@dataclass(frozen=True, slots=True)
class CitedTarget:
    text: str  # the supported sentences, each ending in its [n]
    kept: int  # sentences kept (supported)
    dropped: int  # sentences of the reference no passage supports


def clean_reference(text: str) -> str:
    """HTML paragraph tags some sources carry become line breaks; markdown emphasis goes."""
    return _TAG.sub("\n", text).replace("**", "").strip()


def reference_sentences(text: str) -> list[str]:
    """The sentences worth citing; a whole reference that is one short phrase (an extractive answer such as
    "公司副总经理" or "2020年7月15日") is kept as it is: it is the answer."""
    cleaned = clean_reference(text)
    found = [s.strip() for s in _SENTENCE.findall(cleaned) if sum(c.isalnum() for c in s) >= MIN_SENTENCE_CHARS]
    if not found and MIN_PHRASE_CHARS <= sum(c.isalnum() for c in cleaned) and not _SPLIT.search(cleaned):
        return [cleaned]
    return found


def without_attribution(sentence: str) -> str:
    """The sentence without a leading "根据《…》第…条的规定，" (the rest, when something is left to say)."""
    rest = ATTRIBUTION.sub("", sentence, count=1)
    return rest if sum(c.isalnum() for c in rest) >= MIN_SENTENCE_CHARS else sentence


def best_passage(sentence: str, evidence: Evidence) -> int | None:
    """The [n] of the passage that supports `sentence` with the largest overlap (at least TARGET_MIN_OVERLAP);
    None when none does."""
    best: tuple[float, int] | None = None
    for n, hit in enumerate(evidence.hits, start=1):
        verdict = judge(sentence, hit.chunk.title, hit.chunk.text)
        if verdict.supported and verdict.overlap >= TARGET_MIN_OVERLAP and (best is None or verdict.overlap > best[0]):
            best = (verdict.overlap, n)
    return None if best is None else best[1]


def _with_marker(sentence: str, marker: int) -> str:
    """'……。' -> '……[1]。' : the marker goes before the closing punctuation, where the product's parser and the
    prompt's examples put it; a sentence without one gets '。' after the marker."""
    sentence = sentence.rstrip("：:，,、 ")  # a clause that introduces a list ends in a colon: close it instead
    if sentence[-1] in "。！？；!?":
        return f"{sentence[:-1]}[{marker}]{sentence[-1]}"
    return f"{sentence}[{marker}]。"


def passage_clause(sentence: str, passage: str) -> str:
    """The clause of `passage` (split at 。；) that shares most character bigrams with `sentence`."""
    wanted = char_bigrams(sentence)
    clauses = [c.strip() for c in _SENTENCE.findall(passage) if sum(ch.isalnum() for ch in c) >= MIN_SENTENCE_CHARS]
    return max(clauses, key=lambda c: len(wanted & char_bigrams(c)), default=passage.strip())


def cited_reference(answer: str, evidence: Evidence, max_sentences: int = 6, max_chars: int = 360,
                    style: str = "reference") -> CitedTarget:
    """The supported sentences of `answer`, in their order, cut at `max_sentences` / `max_chars`. With
    style = "clauses" each supported sentence is replaced by the clause of its passage it rests on (once each):
    the reply quotes the evidence, the reference only chooses which clauses."""
    pieces: list[str] = []
    used = dropped = 0
    for sentence in map(without_attribution, reference_sentences(answer)):
        if sentence[-1] in "？?":
            continue  # a question back to the asker states nothing to cite
        marker = best_passage(sentence, evidence)
        if marker is None:
            dropped += 1
            continue
        if style == "clauses":
            sentence = passage_clause(sentence, evidence.hits[marker - 1].chunk.text)
            if _with_marker(sentence, marker) in pieces:
                continue
        if len(pieces) >= max_sentences or used + len(sentence) > max_chars:
            break
        pieces.append(_with_marker(sentence, marker))
        used += len(sentence)
    return CitedTarget("".join(pieces), len(pieces), dropped)


_LAW_ARTICLE = re.compile(rf"^(\S+?)\s+(第{_NUM}条.*)$")


def source_heading(title: str) -> str:
    """'中华人民共和国社会保险法 第二十七条' -> '《中华人民共和国社会保险法》第二十七条'; another title as it is."""
    found = _LAW_ARTICLE.match(title.strip())
    return f"《{found.group(1)}》{found.group(2)}" if found else title.strip()


def cited_basis(basis: str, evidence: Evidence, label: str, max_chars: int = 600) -> CitedTarget:
    """The legal basis of a reference, quoted from the passages it rests on: `label` and one line per passage
    (in the order the basis first names it) with the passage's heading and the clauses the basis matches, each
    followed by the passage's marker. Empty text when no basis sentence is supported."""
    quoted: dict[int, list[str]] = {}
    used = dropped = 0
    for sentence in reference_sentences(basis):
        marker = best_passage(sentence, evidence)
        if marker is None:
            dropped += 1
            continue
        clause = passage_clause(sentence, evidence.hits[marker - 1].chunk.text)
        clause = clause[:-1] + "。" if clause[-1] in "；;" else clause  # a quoted clause is a sentence of its own
        clauses = quoted.setdefault(marker, [])
        if clause in clauses or used + len(clause) > max_chars:
            continue
        clauses.append(clause)
        used += len(clause)
    lines = []
    for marker, clauses in quoted.items():
        if not clauses:
            continue
        heading = source_heading(evidence.hits[marker - 1].chunk.title)
        body = "".join(_with_marker(clause, marker) for clause in clauses)
        lines.append(f"{heading}：{body}" if heading else body)
    kept = sum(len(c) for c in quoted.values())
    # the label opens the first line: on a line of its own the citation check would count it an uncited claim
    return CitedTarget(label + "\n".join(lines) if lines else "", kept, dropped)
