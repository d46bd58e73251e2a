"""Cite and verify: every `[n]` / `[n,m]` / `【n】` in a generated answer becomes a `Citation` to passage n.

A marker naming a passage the model was not given is removed and counted. The text is split into sentences; a
sentence that makes a claim without any citation is flagged, and a citation whose passage does not support its
sentence (`rag.support.judge`: the sentence's own content, title cut out, must overlap the passage text and every
penalty, quantity, article number and quotation it states must be there) counts as unsupported and is listed with
the reason; a line that only names the cited article is a heading, not a claim. The one rule that needs the other
passages (`pair_verdict`): a sentence another given passage holds word for word, while the cited one holds under
half of it, is that passage's copy miscited, however many words the cited one shares with it (two articles of one
law share enough for the overlap rule). A marker that opens a line
("[1] 刑法 第二十条" then the text) cites the block it heads: small models answer that way as often as with a
marker after each sentence. Citation precision = supported (sentence, passage) pairs / all cited pairs including
the removed ones (None when the answer cites nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core.records import Chunk, Citation, Hit
from rag.prompting import Evidence
from rag.support import VERBATIM_MIN, SupportVerdict, char_bigrams, judge, names_only_the_title, verbatim_share

_NUMS = r"\s*\d{1,3}(?:\s*[,\uff0c\u3001;\uff1b]\s*\d{1,3})*\s*"  # 1 | 1,2 | 1、2 (full-width separators too)
MARKER = re.compile(rf"\[({_NUMS})\]|\u3010({_NUMS})\u3011")  # [1,2] or 【1,2】
# a sentence ends at 。！？；!?; a newline, or "." before whitespace; markers right after the end, on the same line,
# belong to it (a marker on the next line opens the next block)
SENTENCE = re.compile(r".*?(?:(?:[\u3002\uff01\uff1f\uff1b!?;]|\.(?=\s)|$)(?:[ \t]*\[[\d,]+\])*|\n)", re.S)
MIN_CLAIM_CHARS = 4  # shorter pieces ("[1]", "1.", a heading word) are not claims
# a cited passage holding less than this share of a sentence in one run, while another given passage holds it word
# for word, did not give the sentence: base-model answers paste an article's text under its neighbour's marker
# (30 of 1,109 pairs the overlap rule passed, legal test run, 2026-12-02), and a genuine paraphrase is not held word
# for word anywhere
HELD_ELSEWHERE_MAX_OWN = 0.5
QUOTE_WHOLE_MAX = 160  # passages up to this long are quoted whole; longer ones by their best sentence


@dataclass(frozen=True, slots=True)
class CitationReport:
    text: str  # the answer with invalid markers removed and the rest written as [n] / [n,m]
    citations: tuple[Citation, ...]  # one per cited passage, in order of first citation
    cited_pairs: int  # (sentence, passage) pairs cited, counting the removed ones
    removed: int  # markers pointing at passages that were not given
    unsupported: int  # valid pairs whose passage does not support the sentence (rag.support.judge)
    uncited_sentences: tuple[str, ...]
    unsupported_sentences: tuple[tuple[str, int, str], ...] = ()  # (sentence, marker, why) per unsupported pair
    claims: int = 0  # sentences that make a claim (headings naming the cited article excluded)

    @property
    def coverage(self) -> float | None:
        """Share of claim sentences that carry a valid citation; None when the answer makes no claim."""
        return (self.claims - len(self.uncited_sentences)) / self.claims if self.claims else None

    @property
    def precision(self) -> float | None:
        if self.cited_pairs == 0:
            return None
        return (self.cited_pairs - self.removed - self.unsupported) / self.cited_pairs

    def trace(self) -> dict[str, Any]:
        return {
            "cited_pairs": self.cited_pairs,
            "removed": self.removed,
            "unsupported": self.unsupported,
            "uncited_sentences": list(self.uncited_sentences),
            "unsupported_sentences": [{"sentence": s, "marker": n, "reason": why}
                                      for s, n, why in self.unsupported_sentences],
            "precision": self.precision,
            "claims": self.claims,
            "coverage": self.coverage,
        }


def marker_numbers(group: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", group)]


def strip_invalid(text: str, evidence: Evidence) -> tuple[str, int]:
    """Rewrite markers as [n] / [n,m] keeping only passages that were given; count the numbers dropped."""
    removed = 0

    def keep(match: re.Match[str]) -> str:
        nonlocal removed
        numbers = marker_numbers(match.group(1) or match.group(2))
        valid = list(dict.fromkeys(n for n in numbers if evidence.passage(n) is not None))
        removed += len(numbers) - len(valid)
        return f"[{','.join(map(str, valid))}]" if valid else ""

    return MARKER.sub(keep, text), removed


def cited_markers(text: str, evidence: Evidence) -> set[int]:
    """The passage numbers `text` cites that name a passage it was given ([n], [n,m], 【n】 alike)."""
    return {n for n in own_numbers(text) if evidence.passage(n) is not None}


def own_numbers(piece: str) -> list[int]:
    return list(dict.fromkeys(n for m in MARKER.finditer(piece) for n in marker_numbers(m.group(1) or m.group(2))))


def pieces(text: str) -> Iterator[tuple[str, str, list[int]]]:
    """(piece of `text`, its claim without markers, the numbers it cites) for every piece, in order, so that
    joining the pieces gives `text` back. A piece without markers of its own inherits those of a marker that
    opened a line of its block: a block ends at a blank line or at the next line-opening marker, not at the end
    of a line ("[1] 刑法 第二十条\n第一款……。\n第二款……。" cites both paragraphs)."""
    heading: list[int] = []
    line_start = True
    for match in SENTENCE.finditer(text):
        piece = match.group(0)
        opening = MARKER.match(piece.lstrip(" \t"))
        if opening and line_start:
            heading = own_numbers(opening.group(0))
        elif not piece.strip() and line_start:
            heading = []  # a blank line ends the block (a lone newline after "。" only ends its line)
        line_start = piece.endswith("\n") or not piece.strip()
        yield piece, MARKER.sub("", piece).strip(), own_numbers(piece) or heading


def is_claim(claim: str) -> bool:
    return sum(c.isalnum() for c in claim) >= MIN_CLAIM_CHARS


def sentences(text: str) -> Iterator[tuple[str, list[int]]]:
    """(claim text without markers, cited numbers) for each sentence of `text` that makes a claim (`pieces`)."""
    for _piece, claim, cited in pieces(text):
        if is_claim(claim):
            yield claim, cited


def quote_span(chunk: Chunk, claim: str) -> tuple[int, int]:
    """Offsets into chunk.text of what the citation quotes: the whole passage when short, else the sentence of
    the passage that shares most bigrams with the citing claims (the whole passage if none shares any)."""
    text = chunk.text
    if len(text) <= QUOTE_WHOLE_MAX or not claim:
        return 0, len(text)
    wanted = char_bigrams(claim)
    spans = [m.span() for m in SENTENCE.finditer(text) if m.group(0).strip()]
    scored = [(len(wanted & char_bigrams(text[a:b])), a, b) for a, b in spans]
    best = max(scored, default=(0, 0, len(text)))
    return (best[1], best[2]) if best[0] > 0 else (0, len(text))


def citation(marker: int, chunk: Chunk, claim: str) -> Citation:
    start, end = quote_span(chunk, claim)
    return Citation(
        marker=marker,
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        title=chunk.title,
        start=chunk.start + start,
        end=chunk.start + end,
        quote=chunk.text[start:end],
    )


def with_title(hit: Hit) -> str:
    """The passage as a verbatim copy is looked for in it: a pasted quote may open with its heading."""
    return f"{hit.chunk.title}{hit.chunk.text}"


def pair_verdict(claim: str, n: int, evidence: Evidence) -> SupportVerdict:
    """Whether passage `n` of `evidence` supports `claim`: `rag.support.judge`, then the held-elsewhere rule (module
    doc)."""
    hit = evidence.passage(n)
    assert hit is not None  # callers pass given passages only
    verdict = judge(claim, hit.chunk.title, hit.chunk.text)
    if not verdict.supported or verbatim_share(claim, with_title(hit)) >= HELD_ELSEWHERE_MAX_OWN:
        return verdict
    for m, other in enumerate(evidence.hits, start=1):
        if m != n and verbatim_share(claim, with_title(other)) >= VERBATIM_MIN \
                and judge(claim, other.chunk.title, other.chunk.text).supported:
            return SupportVerdict(False, verdict.overlap, f"word for word in passage [{m}], not in this one")
    return verdict


def cite(generated: str, evidence: Evidence) -> CitationReport:
    """Resolve and check the citations of one generated answer against the passages it was given."""
    text, removed = strip_invalid(generated, evidence)
    claims: dict[int, list[str]] = {}
    uncited: list[str] = []
    unsupported: list[tuple[str, int, str]] = []
    pairs = 0
    n_claims = 0
    for claim, cited in sentences(text):
        if not cited:
            uncited.append(claim)
        # a heading that only names the cited article is not a claim: nothing to support, nothing to count
        headings = {n for n in cited if names_only_the_title(claim, evidence.hits[n - 1].chunk.title)}
        n_claims += not cited or len(headings) < len(cited)
        for n in cited:
            hit = evidence.passage(n)
            assert hit is not None  # strip_invalid kept only given passages
            claims.setdefault(n, []).append(claim)
            if n in headings:
                continue
            pairs += 1
            verdict = pair_verdict(claim, n, evidence)
            if not verdict.supported:
                unsupported.append((claim, n, verdict.reason))
    citations = tuple(citation(n, evidence.hits[n - 1].chunk, " ".join(c)) for n, c in claims.items())
    return CitationReport(text.strip(), citations, pairs + removed, removed, len(unsupported), tuple(uncited),
                          tuple(unsupported), n_claims)
