"""The small pure pieces of the views: marker chips, timings rows, the filters the sidebar sends, history."""

from __future__ import annotations

from ui.answer_view import quoted_note, timing_rows
from ui.chat_view import evidence_line
from ui.citations_view import marked_answer
from ui.session import history_for_api
from ui.sidebar import IN_FORCE, filters


def test_markers_become_chips_with_their_brackets_kept() -> None:
    assert marked_answer("处死刑[1]。另见[2,3]。") == r"处死刑:blue-background[\[1\]]。另见:blue-background[\[2,3\]]。"
    assert marked_answer("no markers") == "no markers"


def test_timings_keep_the_pipelines_order_and_nest_the_retrievers_stages() -> None:
    trace = {"timings_ms": {"rewrite": 0.01, "retrieve": 28.11, "retrieve.bm25": 0.23, "generate": 906.3,
                            "total": 1935.05}}
    assert timing_rows(trace) == [{"stage": "rewrite", "ms": "0.0"}, {"stage": "retrieve", "ms": "28.1"},
                                  {"stage": "↳ bm25", "ms": "0.2"}, {"stage": "generate", "ms": "906.3"},
                                  {"stage": "total", "ms": "1,935.0"}]
    assert timing_rows({}) == []


def test_filters_are_only_what_the_reader_chose() -> None:
    assert filters(False, "  ") == {}
    assert filters(True, " 中华人民共和国刑法 ") == {"status": IN_FORCE, "law_name": "中华人民共和国刑法"}


def test_history_is_the_last_twenty_messages_of_the_turns() -> None:
    turns = [{"question": f"q{i}", "answer": {"answer": f"a{i}"}} for i in range(12)]
    history = history_for_api(turns)
    assert len(history) == 20 and history[0] == {"role": "user", "content": "q2"}
    assert history[-1] == {"role": "assistant", "content": "a11"}


def test_the_evidence_line_names_each_passage_by_its_marker() -> None:
    passages = [{"n": 1, "title": "中华人民共和国刑法 第二百六十四条", "text": "盗窃公私财物…"},
                {"n": 2, "title": "", "text": "没有标题的段落，只显示开头的二十四个字符，后面的省略掉不显示出来"}]
    line = evidence_line(passages)
    assert line.startswith("Reading 2 passages: [1] 中华人民共和国刑法 第二百六十四条 · [2] 没有标题的段落")
    assert line.endswith("…") and "省略掉不显示出来" not in line


def test_a_quoted_answer_says_it_is_an_extract() -> None:
    assert quoted_note({"trace": {"quoted_for_reply": "[1]"}}).startswith("An extract")
    assert quoted_note({"trace": {}}) is None and quoted_note({}) is None


def test_a_pasted_answer_says_it_is_the_sources_text() -> None:
    pasted = {"trace": {"citations": {"pasted": True, "copied_share": 0.94}}}
    assert quoted_note(pasted).startswith("Quoted, not summarised: 94% of this reply")
    assert quoted_note({"trace": {"citations": {"pasted": False, "copied_share": 0.4}}}) is None
