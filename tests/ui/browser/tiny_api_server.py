"""The API the browser tests talk to, as its own process: `python tests/ui/browser/tiny_api_server.py --port P
--workdir D`. Like `dossier serve`, it is `api.create_app` under uvicorn on 127.0.0.1, over a real pipeline of the
legal domain: the real HybridRetriever (MiniLM + jieba BM25, RRF) on a real index of Criminal Law articles 232-276,
the real abstention with the threshold calibrated as tests/conftest.py does, prompting, citation and support checks.

One piece is not the product's: the generator. A browser test must open a citation, and the tiny random LM of the
other tests cites by chance; `QuotingGenerator` answers from the prompt's own numbered passages instead (the
sentence of [1] and of [2] closest to the question, each with its marker), streamed in small pieces like tokens.
A question asking for the text itself ("原文") gets what small models often write: passages [1] and [2] pasted whole
under their headings, which the product must mark as a paste (rag/paste.py).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(TESTS.parent), str(TESTS)]  # the repository (our packages) and tests/ (slice_index, ...)

from core.protocols import GenerationParams, Message  # noqa: E402

log = logging.getLogger("tiny_api_server")
PASSAGE = re.compile(r"^\[(\d+)\] ([^\n]*)\n(.+?)(?=\n\n\[\d+\] |\n\n问题：|\Z)", re.M | re.S)  # "[n] title\ntext"
FOLLOW_UP = re.compile(r"后续问题：(.+)")  # the legal domain's rewrite prompt
SENTENCE = re.compile(r"[^。；！？\n]+[。；！？]?")
PIECE_CHARS, PIECE_DELAY_S = 4, 0.06  # ~1-2 s for an answer: long enough to see it stream


class QuotingGenerator:
    name = "quoting-generator (tests)"

    def load(self) -> QuotingGenerator:
        return self

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        prompt = messages[-1].content
        passages = PASSAGE.findall(prompt)
        if not passages:  # the rewrite of a follow-up: the question itself is standalone enough here
            follow_up = FOLLOW_UP.search(prompt)
            return follow_up.group(1).strip() if follow_up else prompt.strip().splitlines()[-1]
        question = prompt.rsplit("问题：", 1)[-1].split("\n", 1)[0]
        if "原文" in question:
            return "\n".join(f"[{n}] {title}\n{text}" for n, title, text in passages[:2])
        return "".join(f"{closest_sentence(text, question)}[{n}]" for n, _, text in passages[:2])

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        text = self.generate(messages, params)
        for i in range(0, len(text), PIECE_CHARS):
            time.sleep(PIECE_DELAY_S)
            yield text[i : i + PIECE_CHARS]


def closest_sentence(passage: str, question: str) -> str:
    """The passage's sentence sharing the most character pairs with the question, ended with a stop."""
    def pairs(text: str) -> set[str]:
        return {text[i : i + 2] for i in range(len(text) - 1)}

    asked = pairs(question)
    sentences = [s.strip() for s in SENTENCE.findall(passage) if len(s.strip()) > 1]
    best = max(sentences, key=lambda s: len(pairs(s) & asked))
    return best if best[-1] in "。；！？" else best + "。"


def build_pipeline(workdir: Path):
    from api_support import IN_DOMAIN, OUT_OF_DOMAIN
    from fakes import hits_of
    from slice_index import build_slice_index, legal_slice, minilm_cfg

    from domains import load_domain
    from eval.calibrate import choose_threshold
    from rag.abstention import best_score
    from rag.build import build_pipeline as build
    from rag.build_retrieval import build_retriever

    cfg = minilm_cfg(load_domain("legal"))
    index = build_slice_index(cfg, legal_slice(range(232, 277)), workdir / "legal-slice")
    retriever = build_retriever(cfg, index_dir=index)

    def scores(questions: list[str]) -> list[float]:
        return [best_score(hits_of(retriever, q, 5), "dense") for q in questions]

    threshold = choose_threshold(scores(IN_DOMAIN), scores(OUT_OF_DOMAIN)).threshold
    cfg = replace(cfg, abstention=replace(cfg.abstention, threshold=threshold, score="dense"))
    return build(cfg, retriever=retriever, generator=QuotingGenerator())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    import uvicorn

    from api import create_app

    pipeline = build_pipeline(args.workdir)
    app = create_app(["legal"], build=lambda _: pipeline, api_keys=[])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
