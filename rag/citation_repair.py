"""A marker on the wrong passage, moved to the given passage that holds the sentence.

Small generators copy the right passage and cite it by position: of the unsupported sentences in the first answer
runs, most were word for word in another passage of the same prompt (Qwen2.5-0.5B, medical: 87 of 122; its first
RAG-SFT adapters: 74 of 84 and 123 of 143), cited [1], [2], [3] … in the order the sentences came. The reader
checks a claim against the passage its marker names, so the marker must name the passage that holds it.

A sentence's own markers (after its text) are checked with the product's support check (`rag.support.judge`);
a marker whose passage does not support the sentence moves to the given passage that supports it and holds it
word for word: one unbroken run of the passage covers at least `rag.support.VERBATIM_MIN` of the sentence (letters and
digits, punctuation aside). The check alone (15 % bigram overlap, the facts present) would let a move launder an
invented claim onto a passage that merely shares its penalty: "故意杀人的，处五年以下有期徒刑" shares 77 % of its
bigrams with an injury article ending "致人重伤的，处五年以下有期徒刑", but its longest run there is 64 % of it. The
miscited copies this is for are whole: of the sentences another passage supports, 73 of 87 (medical base run) and
103 of 123 (medical RAG-SFT v3) have a run of 80 % or more.

A marker that opens a line (a block heading such as "[1] 中华人民共和国刑法 第二十条") stays as written, since
`rag.citations` reads it as the citation of every sentence of its block. A sentence of the block that the heading's
passage does not support, and another given passage supports and holds word for word, gets a marker of its own
naming that passage, which replaces the inherited one for that sentence alone. The base model and the legal adapter
paste such blocks ("[1] <passage 1's sentence>。<passage 3's sentence>。"): with this rule the served precision of
the same replies rose 0.784 → 0.857 (finance base, FinQA dev) and 0.924 → 0.966 (legal adapter, LawBench
consultation dev; eval/README.md).

Nothing else changes: a sentence no given passage supports keeps its marker and is reported
unsupported by `rag.citations.cite` as before, and an uncited sentence gets no marker. Every move is returned, so
the trace shows what the model wrote and what was served.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.citations import (
    MARKER,
    is_claim,
    marker_numbers,
    own_numbers,
    pair_verdict,
    pieces,
    with_title,
)
from rag.prompting import Evidence
from rag.support import VERBATIM_MIN, judge, verbatim_share


@dataclass(frozen=True, slots=True)
class Repair:
    sentence: str  # the claim, markers removed
    cited: int  # the passage the model named
    moved_to: int  # the passage that supports the sentence

    def trace(self) -> dict[str, object]:
        return {"sentence": self.sentence, "cited": self.cited, "moved_to": self.moved_to}


def supporting_passage(claim: str, evidence: Evidence, exclude: set[int]) -> int | None:
    """The given passage (not in `exclude`) that supports `claim` and holds it word for word
    (`rag.support.VERBATIM_MIN`), the longest run first; None when none does."""
    best: tuple[float, int] | None = None
    for n, hit in enumerate(evidence.hits, start=1):
        if n in exclude:
            continue
        share = verbatim_share(claim, with_title(hit))
        if share < VERBATIM_MIN or (best is not None and share <= best[0]):
            continue
        if judge(claim, hit.chunk.title, hit.chunk.text).supported:
            best = (share, n)
    return None if best is None else best[1]


def _repaired_piece(piece: str, evidence: Evidence, repairs: list[Repair]) -> str:
    if MARKER.match(piece.lstrip(" \t")):
        return piece  # a marker that opens a line heads a block: rag.citations reads it, nothing to move here
    claim = MARKER.sub("", piece).strip()
    if not is_claim(claim):
        return piece
    cited = [n for m in MARKER.finditer(piece) for n in marker_numbers(m.group(1) or m.group(2))]
    moves: dict[int, int] = {}
    for n in dict.fromkeys(cited):
        hit = evidence.passage(n)
        if hit is None or pair_verdict(claim, n, evidence).supported:
            continue
        target = supporting_passage(claim, evidence, exclude=set(cited) | set(moves.values()))
        if target is not None:
            moves[n] = target
            repairs.append(Repair(claim, n, target))
    if not moves:
        return piece

    def rewrite(match: re.Match[str]) -> str:
        numbers = [moves.get(n, n) for n in marker_numbers(match.group(1) or match.group(2))]
        return f"[{','.join(map(str, dict.fromkeys(numbers)))}]"

    return MARKER.sub(rewrite, piece)


def _marked_in_block(piece: str, claim: str, inherited: list[int], evidence: Evidence,
                     repairs: list[Repair]) -> str:
    """A sentence citing only through its block's heading, given its own marker where the heading's passage does
    not support it and another passage holds it (module doc)."""
    given = [n for n in inherited if evidence.passage(n) is not None]
    if not given or not is_claim(claim) or any(pair_verdict(claim, n, evidence).supported for n in given):
        return piece
    target = supporting_passage(claim, evidence, exclude=set(given))
    if target is None:
        return piece
    repairs.append(Repair(claim, given[0], target))
    body = piece.rstrip()
    return f"{body}[{target}]{piece[len(body):]}"


def repoint_markers(generated: str, evidence: Evidence) -> tuple[str, list[Repair]]:
    """`generated` with each sentence's unsupported markers moved to the passage that supports it, and the moves."""
    repairs: list[Repair] = []
    out = [_marked_in_block(piece, claim, cited, evidence, repairs) if cited and not own_numbers(piece)
           else _repaired_piece(piece, evidence, repairs)
           for piece, claim, cited in pieces(generated)]
    return "".join(out), repairs
