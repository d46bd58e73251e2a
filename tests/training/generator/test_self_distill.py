"""Self-distilled RAG-SFT examples: the model's own replies with what the citation check faults taken out, on the
pipeline's exact prompt, read back by the SFT loader with the loss on the corrected reply only."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from filing_sample import FILING, LOAN, filing_evidence

from core.protocols import GenerationParams
from core.records import Chunk, Hit
from rag.abstention import refusal_sentence
from rag.citations import cite
from rag.prompting import select_evidence
from training.args import load_recipe
from training.generator.rag_preferences import write_jsonl_rows
from training.generator.self_distill import distilled_rows, distilled_target
from training.launch import CONFIGS_DIR

LIMITATION = "向人民法院请求保护民事权利的诉讼时效期间为三年。"


@pytest.fixture(scope="module")
def tokenizer(tiny_lm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_lm_dir)


def _evidence():
    hits = [Hit(Chunk("c1", "民法典#188", LIMITATION, 0, 24, title="中华人民共和国民法典 第一百八十八条"), 0.9, "rrf"),
            Hit(Chunk("c2", "民法典#675", LOAN, 0, 17, title="中华人民共和国民法典 第六百七十五条"), 0.8, "rrf")]
    return select_evidence(hits, context_chars=10_000)


ANSWER_TARGET = "诉讼时效期间为三年[1]。"


@pytest.mark.parametrize(("reply", "expected", "source"), [
    ("向人民法院请求保护民事权利的诉讼时效期间为三年[1]。", "向人民法院请求保护民事权利的诉讼时效期间为三年[1]。",
     "reply_as_written"),
    # the right words under the wrong number are re-cited; an invented sentence goes
    ("借款人应当按照约定的期限返还借款[1]。超过十年就不能起诉了[1]。", "借款人应当按照约定的期限返还借款[2]。",
     "reply_corrected"),
    ("超过十年就不能起诉了[1]。", None, "nothing_checkable_left"),
    ("现有法律条文库中没有找到足以回答该问题的依据。", None, "declined_answerable"),
])
def test_an_answerable_prompt_trains_on_the_reply_with_its_faults_taken_out(legal, reply, expected, source) -> None:
    text, how = distilled_target(ANSWER_TARGET, reply, _evidence(), legal)
    assert (text, how) == (expected, source)
    if text is not None:
        assert cite(text, _evidence()).precision == 1.0


def test_an_unanswerable_prompt_trains_on_a_refusal(legal) -> None:
    refusal = refusal_sentence(legal.prompts)
    assert distilled_target(refusal, "可以起诉[1]。", _evidence(), legal) == (
        refusal, "refusal_for_answered_unanswerable")
    declined = "给出的条文无法回答这个问题。"
    assert distilled_target(refusal, declined, _evidence(), legal) == (declined, "reply_declined_unanswerable")


@pytest.mark.parametrize(("pasted", "expected", "source"), [
    ("keep", "paste", "reply_as_written"),
    ("drop", None, "pasted_reply"),
    ("reference", "688388[1]", "reference_for_pasted_reply"),
])
def test_a_pasted_reply_is_kept_dropped_or_replaced_by_the_reference(finance, pasted, expected, source) -> None:
    reply = FILING + "[1]"
    text, how = distilled_target("688388[1]", reply, filing_evidence(), finance, pasted)
    assert (text, how) == (reply if expected == "paste" else expected, source)


class WrongNumberGenerator:
    """Replies with the first sentence of passage [1], word for word, cited to passage [2] (the copy-by-position
    fault the first adapters had), then a sentence no passage holds."""

    name = "wrong-number"

    def generate(self, messages, params) -> str:
        shown = next(m.content for m in messages if m.role == "user")
        return re.search(r"\[1\][^\n]*\n([^。；：\n]+)", shown).group(1) + "[2]。这种情况下一定会胜诉[1]。"


def test_rows_keep_the_pipeline_prompt_and_load_as_sft_examples(legal, tokenizer, tmp_path) -> None:
    from training.formatting import FormatReport
    from training.generator.rag_sft import rag_targets
    from training.generator.sft_data import build_sft_chats

    recipe = load_recipe(CONFIGS_DIR / "sft_legal_rag.toml", ["data.limit=5", "data.refusals=0"])
    counts: Counter[str] = Counter()
    # no index: the passages are the gold articles and sampled others (training/generator/rag_sft.py)
    rows = list(distilled_rows(legal, recipe, tokenizer, None, WrongNumberGenerator(), GenerationParams(),
                               counts=counts))
    assert rows and counts["reply_corrected"] == len(rows), counts
    prompts = {example.record.record_id: example for example, _ in
               rag_targets(legal, recipe, tokenizer, None, FormatReport())}
    for row in rows:
        example = prompts[row["id"]]
        *prompt, answer = row["messages"]
        assert prompt == [{"role": m.role, "content": m.content} for m in example.messages]
        assert answer["role"] == "assistant" and "这种情况下一定会胜诉" not in answer["content"]
        copied = re.search(r"\[1\][^\n]*\n([^。；：\n]+)", prompt[-1]["content"]).group(1)
        assert re.fullmatch(re.escape(copied) + r"\[\d\]。", answer["content"])  # the copy stays, cited where held
        assert cite(answer["content"], example.evidence).precision == 1.0

    path = tmp_path / "distilled.jsonl"
    assert write_jsonl_rows(iter(rows), path) == len(rows)
    sft = load_recipe(CONFIGS_DIR / "sft_legal_distill.toml", [f'data.path="{path}"'])
    chats, report = build_sft_chats(legal, sft, tokenizer)
    assert report.kept == len(rows) and len(chats) == len(rows)
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])["messages"][-1]["content"]
    learned = [t for t, m in zip(chats[0].input_ids, chats[0].assistant_masks, strict=True) if m]
    assert tokenizer.decode(learned).startswith(first)  # the loss falls on the corrected reply, not the prompt


SHARES = ("格隆汇9月16日丨浙江众成(002522.SZ)公布，公司于近日接到控股股东陈大魁的通知。截至公告披露日，"
          "陈大魁持有公司股份的数量为35370.00万股，占公司股份总数的比例为39.05%。公司将持续关注股东所持公司股份的"
          "质押情况，并按规定及时履行信息披露义务。")


def _shares_evidence():
    hits = [Hit(Chunk("c2", "民法典#675", LOAN, 0, 17, title="中华人民共和国民法典 第六百七十五条"), 0.9, "rrf"),
            Hit(Chunk("s1", "公告#2", SHARES, 0, len(SHARES), title="浙江众成 公告"), 0.8, "rrf")]
    return select_evidence(hits, context_chars=10_000)


def test_the_span_is_the_shortest_clause_run_holding_the_value_with_enough_to_say_what_it_is() -> None:
    from training.generator.answer_span import cited_span, passage_span

    assert passage_span(SHARES, "35370.00万股") == "陈大魁持有公司股份的数量为35370.00万股"
    assert passage_span(SHARES, "39.05%") == "占公司股份总数的比例为39.05%"
    assert passage_span(SHARES, "002522") == "格隆汇9月16日丨浙江众成(002522.SZ)公布"  # the clause, code and all
    assert passage_span(SHARES, "2020年1月1日") is None and passage_span(SHARES, "万") is None
    assert cited_span("39.05%", _shares_evidence()) == "占公司股份总数的比例为39.05%[2]。"
    assert cited_span("39.05%", _shares_evidence(), prefer=[1]) == "占公司股份总数的比例为39.05%[2]。"
    assert cited_span("2020年1月1日", _shares_evidence()) is None


@pytest.mark.parametrize(("reply", "expected", "source"), [
    (SHARES + "[2]", "陈大魁持有公司股份的数量为35370.00万股[2]。", "span_for_pasted_reply"),
    ("陈大魁持有公司股份的数量为30000万股[2]。", "陈大魁持有公司股份的数量为35370.00万股[2]。",
     "span_for_nothing_checkable_left"),  # the wrong value: the check takes it out, the span puts the right one
    ("占公司股份总数的比例为39.05%[2]。", "陈大魁持有公司股份的数量为35370.00万股[2]。",
     "span_for_reply_without_reference"),  # supported, but another value
    ("35370.00万股[2]", "35370.00万股[2]", "reply_as_written"),  # short, supported, holds the value: its own words
])
def test_the_span_route_replaces_what_does_not_state_the_value_briefly(finance, reply, expected, source) -> None:
    target = "35370.00万股[2]。"
    text, how = distilled_target(target, reply, _shares_evidence(), finance, "span", "35370.00万股")
    assert (text, how) == (expected, source)
    assert cite(text, _shares_evidence()).precision == 1.0


def test_the_span_route_leaves_refusals_and_values_no_passage_holds_to_the_other_routes(finance) -> None:
    refusal = refusal_sentence(finance.prompts)
    evidence = _shares_evidence()
    assert distilled_target(refusal, SHARES + "[2]", evidence, finance, "span", "") == (
        refusal, "refusal_for_answered_unanswerable")
    declined = distilled_target("35370.00万股[2]。", refusal, evidence, finance, "span", "35370.00万股")
    assert declined == ("陈大魁持有公司股份的数量为35370.00万股[2]。", "span_for_declined_answerable")
    assert distilled_target("x[2]。", refusal, evidence, finance, "span", "2020年1月1日") == (
        None, "declined_answerable")
    assert distilled_target("x[2]。", SHARES + "[2]", evidence, finance, "span", "2020年1月1日") == (
        None, "pasted_reply")
