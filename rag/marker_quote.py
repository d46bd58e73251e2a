"""A reply of citation markers alone, answered by quoting: "[1]" becomes the sentence of passage 1 that bears most
on the question, cited to passage 1.

The 0.5B model answers about one finance extraction question in five ("…的质押物占总股比是什么？") with a bare "[1]":
it points at the passage and writes nothing. Abstaining throws the pointer away, and asking again made the model copy
its instruction or write uncited figures (eval/README.md, R3). A quote cannot claim what its passage does not say,
so what the user gets is the passage's own words under its marker; whether they answer is the reader's call, as with
any cited sentence.

The sentence is chosen the way evidence focus chooses (rag/evidence_focus.py): by the question's character bigrams
it holds, weighted by how rare they are among the passage's sentences.
"""

from __future__ import annotations

from rag.citations import own_numbers
from rag.evidence_focus import GAP, focus_passages
from rag.prompting import Evidence, without_instructions


def quoted_reply(generated: str, evidence: Evidence, question: str) -> str | None:
    """The first marked passage's sentence nearest `question`, with its marker; None when no marker names a
    passage that was given."""
    for marker in own_numbers(generated):  # [n], [n,m] and 【n】, read as the citation parser reads them
        hit = evidence.passage(marker)
        if hit is None:
            continue
        # from the passage as the model was shown it: a sentence the prompt guard held back is not quoted either
        sentence = focus_passages([without_instructions(hit.chunk.text)], question, 1)[0].strip(GAP).strip()
        return f"{sentence}[{marker}]" if sentence else None
    return None
