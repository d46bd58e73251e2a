"""RAG SFT examples: the product's own prompt (byte for byte), gold passages cited, markers read by the product's
parser."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from fakes import ScriptedGenerator, fixed_retriever
from train_helpers import smoke_recipe

from core.records import Chunk, Hit
from rag.pipeline import RagPipeline
from rag.prompting import select_evidence
from training.args import load_recipe
from training.generator.rag_sft import corpus_chunks, gold_citation_share, rag_chats, rag_example, retrieved_passages
from training.launch import CONFIGS_DIR


@pytest.fixture(scope="module")
def tokenizer(tiny_lm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_lm_dir)


def test_fallback_examples_cite_their_gold_passages(legal, tokenizer) -> None:
    recipe = load_recipe(CONFIGS_DIR / "sft_legal_rag.toml", ["data.limit=12", "train.max_length=4096"])
    chats, report = rag_chats(legal, recipe, tokenizer, retriever=None)
    assert report.kept == len(chats) > 0
    assert report.kept + sum(report.dropped.values()) == 24  # 12 from each of the recipe's two sets
    text = tokenizer.decode(chats[0].input_ids)
    answer = tokenizer.decode([t for t, m in zip(chats[0].input_ids, chats[0].assistant_masks, strict=True) if m])
    markers = {int(m) for m in re.findall(r"\[(\d+)\]", answer)}
    assert markers and all(f"[{n}]" in text.split("<|im_start|>assistant")[0] for n in markers)
    assert not answer.startswith("回答")
    bases = [tokenizer.decode([t for t, m in zip(c.input_ids, c.assistant_masks, strict=True) if m]) for c in chats]
    headings = re.findall(r"《(.+?)》(第.+?条)：", "".join(bases))
    assert headings and all(f"{law} {article}" in "".join(tokenizer.decode(c.input_ids) for c in chats)
                            for law, article in headings)  # every quoted heading is a passage's title
    assert all(b.count("法律依据") <= 1 and ("法律依据" not in b or "法律依据：《" in b) for b in bases)
    again, _ = rag_chats(legal, recipe, tokenizer, retriever=None)
    assert [c.input_ids for c in again] == [c.input_ids for c in chats]  # seeded: the same negatives every time


def test_a_gold_article_is_put_in_only_when_asked(legal) -> None:
    from eval.evalsets import load_evalset

    rec = next(r for r in load_evalset(legal, "lawbench_consultation", limit=5).records)
    wrong = [Chunk(f"x{i}", f"x{i}", "无关", 0, 2) for i in range(5)]
    recipe = smoke_recipe("sft", CONFIGS_DIR, {"source": "rag", "evalset": "lawbench_consultation", "passages": 3,
                                               "insert_gold": True})
    corpus = {g: Chunk(g, g, "gold", 0, 4) for g in rec.gold_ids}
    retriever = fixed_retriever([Hit(c, 1.0, "dense") for c in wrong])
    hits = retrieved_passages(rec, retriever, corpus, recipe)
    assert len(hits) == 3 and sum(h.chunk.doc_id in rec.gold_ids for h in hits) == 1
    served = replace(recipe, data=replace(recipe.data, insert_gold=False))
    as_served = retrieved_passages(rec, retriever, corpus, served)
    assert [h.chunk.doc_id for h in as_served] == ["x0", "x1", "x2"]  # the default: the evidence as retrieved


def test_gold_citation_share_reads_markers_as_the_product_does() -> None:
    chunks = [Chunk(f"c{i}", f"c{i}", "条文", 0, 2) for i in range(3)]
    evidence = select_evidence([Hit(c, 1.0, "dense") for c in chunks], 2400)
    assert gold_citation_share("依据[1]和[3]。", evidence, [1]) == 0.5
    assert gold_citation_share("依据【1】和[2,3]。", evidence, [1, 2]) == pytest.approx(2 / 3)
    assert gold_citation_share("没有引用", evidence, [1]) is None
    assert gold_citation_share("[2][2][9]", evidence, [2]) == 1.0  # [9] was not given: not a citation


def test_the_training_prompt_is_the_prompt_the_pipeline_sends(legal) -> None:
    """Same question, same evidence: the RAG-SFT example's messages are byte for byte the pipeline's."""
    from eval.evalsets import load_evalset

    rec = load_evalset(legal, "lawbench_consultation", limit=1).records[0]
    corpus = corpus_chunks(legal)
    hits = [Hit(corpus[g], 0.8, "zscore", {"dense": 0.8, "zscore": 1.2}) for g in rec.gold_ids if g in corpus]
    hits += [Hit(corpus[d], 0.5, "zscore", {"dense": 0.7, "zscore": 0.3}) for d in sorted(corpus)[:2]]
    generator = ScriptedGenerator("依据条文回答[1]。")
    cfg = replace(legal, abstention=replace(legal.abstention, threshold=0.0))
    RagPipeline(cfg, fixed_retriever(hits), generator).answer(rec.query)
    example = rag_example(cfg, rec, rec.query, hits)
    assert [(m.role, m.content) for m in example.messages] == [(m.role, m.content) for m in generator.calls[0]]
    assert example.gold_markers and all(f"[{n}] " in example.messages[-1].content for n in example.gold_markers)


def _gold_retriever(legal):
    """The first five gold articles of the first 8 consultation questions, returned for every query."""
    from eval.evalsets import load_evalset

    corpus = corpus_chunks(legal)
    recs = load_evalset(legal, "lawbench_consultation", limit=8).records
    golds = list(dict.fromkeys(g for r in recs for g in r.gold_ids if g in corpus))[:5]
    return golds, fixed_retriever([Hit(corpus[g], 0.9, "dense") for g in golds])


def test_retrieved_examples_cite_only_supported_sentences_and_teach_the_refusal(legal, tokenizer) -> None:
    """With a retriever: every answer target passes the product's own citation check, and questions of the other
    domains / with the gold hidden get the domain's abstention sentence."""
    from rag.abstention import refusal_sentence
    from rag.citations import cite
    from training.generator.rag_sft import rag_examples

    recipe = load_recipe(CONFIGS_DIR / "sft_legal_rag.toml", ["data.limit=8", "data.refusals=2",
                                                              "train.max_length=4096"])
    _, retriever = _gold_retriever(legal)
    chats, report = rag_chats(legal, recipe, tokenizer, retriever)
    replies = [tokenizer.decode([t for t, m in zip(c.input_ids, c.assistant_masks, strict=True) if m]) for c in chats]
    refusal = refusal_sentence(legal.prompts)
    assert refusal == "现有法律条文库中没有找到足以回答该问题的依据。"
    assert sum(refusal in r for r in replies) == 6  # 2 medical, 2 finance, 2 legal with the gold hidden
    answers = [r for r in replies if refusal not in r]
    assert answers and report.kept == len(chats)
    examples = {e.record.record_id: e for e in rag_examples(legal, recipe, tokenizer, ["train"], retriever,
                                                           require_gold=False, shuffle=recipe.data.shuffle_evidence)}
    checked = 0
    for chat, reply in zip(chats, replies, strict=True):
        if refusal in reply:
            continue
        prompt = tokenizer.decode(chat.input_ids)
        example = next(e for e in examples.values() if e.messages[-1].content in prompt)
        report_ = cite(reply.split("<|im_end|>")[0], example.evidence)
        assert report_.precision == 1.0 and report_.coverage == 1.0
        checked += 1
    assert checked == len(answers)


def test_shuffled_evidence_keeps_each_target_cited_to_the_passage_it_quotes(legal, tokenizer) -> None:
    """`data.shuffle_evidence`: the retrieved passages in a seeded order of their own, the same on every build, and
    every marker of a target still names the passage that supports its sentence."""
    from rag.abstention import model_refused
    from rag.citations import cite
    from training.formatting import FormatReport
    from training.generator.rag_sft import rag_targets

    recipe = load_recipe(CONFIGS_DIR / "sft_legal_rag.toml", ["data.limit=8", "data.refusals=0",
                                                              "data.shuffle_evidence=true"])
    golds, retriever = _gold_retriever(legal)
    targets = rag_targets(legal, recipe, tokenizer, retriever, FormatReport())
    orders = [[h.chunk.doc_id for h in example.evidence.hits] for example, _ in targets]
    assert targets and any(order != golds[: len(order)] for order in orders)  # not the retriever's order
    assert orders == [[h.chunk.doc_id for h in e.evidence.hits]
                      for e, _ in rag_targets(legal, recipe, tokenizer, retriever, FormatReport())]
    for example, target in targets:
        assert not model_refused(target, legal.prompts)
        assert cite(target, example.evidence).precision == 1.0
