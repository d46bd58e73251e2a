"""A model's own reply with what the citation check faults taken out: the `chosen` side of an on-policy DPO pair.

The RAG-SFT targets are a reference answer's supported sentences, in a register the base model does not write;
adapters trained toward them changed the style and lost citation precision (eval/README.md, issue 13). A pair whose
two sides differ only where the check finds fault teaches exactly that: keep a sentence where its passage holds
it, cite it where it holds it, leave it out where no passage does.

From the reply as served (markers repointed by `rag.citation_repair`, markers to passages not given removed):
- a sentence cited to passages that support it stays; a marker whose passage does not support it is dropped, and
  the sentence with it when none of its markers hold;
- an uncited claim gets the marker of the given passage that holds it word for word, else it goes;
- a line that only names its article ("[1] 中华人民共和国刑法 第二十条") stays: it heads the block below it.
The result must pass the check whole (citation precision 1.0, one claim at least); else there is no correction and
the caller falls back to the recipe's target.
"""

from __future__ import annotations

import re

from rag.citation_repair import repoint_markers, supporting_passage
from rag.citations import MARKER, cite, is_claim, marker_numbers, own_numbers, pair_verdict, pieces, strip_invalid
from rag.prompting import Evidence
from rag.support import names_only_the_title

_BLANK_RUNS = re.compile(r"\n{3,}")
_STOPS = "。！？；!?;."


def _supports(n: int, claim: str, evidence: Evidence) -> bool:
    hit = evidence.passage(n)
    if hit is None:
        return False
    return names_only_the_title(claim, hit.chunk.title) or pair_verdict(claim, n, evidence).supported


def _keep_markers(piece: str, keep: set[int]) -> str:
    def rewrite(match: re.Match[str]) -> str:
        numbers = [n for n in marker_numbers(match.group(1) or match.group(2)) if n in keep]
        return f"[{','.join(map(str, numbers))}]" if numbers else ""

    return MARKER.sub(rewrite, piece)


def _with_marker(piece: str, n: int) -> str:
    """`piece` with [n] where the prompt asks for it: after the sentence, before its full stop."""
    body = piece.rstrip("\n")
    stop = body[-1:] if body[-1:] in _STOPS else ""
    return f"{body[: len(body) - len(stop)]}[{n}]{stop}" + piece[len(body):]


def corrected_reply(reply: str, evidence: Evidence) -> str | None:
    """`reply` with every faulted claim fixed or left out (module doc); None when nothing checkable is left."""
    text, _ = repoint_markers(reply, evidence)
    text, _ = strip_invalid(text, evidence)
    out: list[str] = []
    for piece, claim, cited in pieces(text):
        line_end = "\n" * piece.endswith("\n")  # what stays of a piece left out: the block's shape
        if not is_claim(claim):
            out.append(piece)
            continue
        if not cited:
            found = supporting_passage(claim, evidence, exclude=set())
            out.append(_with_marker(piece, found) if found is not None else line_end)
            continue
        holding = {n for n in cited if _supports(n, claim, evidence)}
        own = own_numbers(piece)
        if not holding:
            out.append(line_end)
        elif own and holding != set(own):
            out.append(_keep_markers(piece, holding))
        else:
            out.append(piece)
    corrected = _BLANK_RUNS.sub("\n\n", "".join(out)).strip()
    report = cite(corrected, evidence)
    if not corrected or report.precision != 1.0 or report.claims == 0:
        return None
    return corrected
