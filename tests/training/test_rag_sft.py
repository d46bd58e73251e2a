"""RAG SFT examples (fallback passages: gold + sampled negatives) cite the gold passage; citation precision."""

from __future__ import annotations

import re

import pytest
from train_helpers import smoke_recipe

from core.records import Chunk, Hit
from training.args import load_recipe
from training.launch import CONFIGS_DIR
from training.rag_sft import citation_precision, rag_chats, retrieved_passages


@pytest.fixture(scope="module")
def tokenizer(tiny_lm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_lm_dir)


def test_fallback_examples_cite_their_gold_passages(legal, tokenizer) -> None:
    recipe = load_recipe(CONFIGS_DIR / "sft_legal_rag.toml", ["data.limit=12", "train.max_length=1024"])
    chats, report = rag_chats(legal, recipe, tokenizer, retriever=None)
    assert report.kept == len(chats) > 0
    assert report.kept + sum(report.dropped.values()) == 12
    text = tokenizer.decode(chats[0].input_ids)
    answer = tokenizer.decode([t for t, m in zip(chats[0].input_ids, chats[0].assistant_masks, strict=True) if m])
    markers = {int(m) for m in re.findall(r"\[(\d+)\]", answer)}
    assert markers and all(f"[{n}]" in text.split("<|im_start|>assistant")[0] for n in markers)
    assert "法律依据" not in answer and not answer.startswith("回答")
    again, _ = rag_chats(legal, recipe, tokenizer, retriever=None)
    assert [c.input_ids for c in again] == [c.input_ids for c in chats]  # seeded: the same negatives every time


class ListRetriever:
    def __init__(self, chunks: list[Chunk]) -> None:
        self.chunks = chunks

    def retrieve(self, query: str, k: int) -> list[Hit]:
        return [Hit(c, 1.0, "test") for c in self.chunks[:k]]


def test_retrieved_passages_make_room_for_a_gold_article(legal) -> None:
    from eval.evalsets import load_evalset

    rec = next(r for r in load_evalset(legal, "lawbench_consultation", limit=5).records)
    wrong = [Chunk(f"x{i}", f"x{i}", "无关", 0, 2) for i in range(5)]
    recipe = smoke_recipe("sft", CONFIGS_DIR, {"source": "rag", "evalset": "lawbench_consultation", "passages": 3})
    corpus = {g: Chunk(g, g, "gold", 0, 4) for g in rec.gold_ids}
    chunks = retrieved_passages(rec, ListRetriever(wrong), corpus, recipe)
    assert len(chunks) == 3 and chunks[-1].doc_id in rec.gold_ids


def test_citation_precision() -> None:
    assert citation_precision("依据[1]和[3]。", {1}) == 0.5
    assert citation_precision("没有引用", {1}) is None
    assert citation_precision("[2][2]", {2}) == 1.0
