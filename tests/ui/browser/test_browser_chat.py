"""Asking in a real browser: the answer streams in, a `[n]` opens its card with the cited words highlighted in
their passage, an out-of-corpus question looks like what it is, and the sidebar's settings reach the API."""

from __future__ import annotations

import pytest
from api_support import COOKING_QUESTION, needs_minilm
from app_steps import ANSWER_S, answers, ask, open_source, shot, sidebar, source_button, type_question, wait_idle
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, needs_minilm]

QUESTION = "故意杀人罪判几年？"
MURDER = "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑"  # Criminal Law art. 232, the top hit


def test_a_streamed_answer_opens_its_citation_with_the_span_highlighted(new_page) -> None:
    page: Page = new_page()
    type_question(page, QUESTION)
    streaming = page.locator('[data-testid="stChatMessage"]', has_text="▌")  # the cursor while text arrives
    expect(streaming).to_be_visible(timeout=ANSWER_S)
    shot(page, "01-answer-streaming")
    expect(answers(page)).to_have_count(1, timeout=ANSWER_S)
    wait_idle(page)
    expect(streaming).to_have_count(0)
    expect(source_button(page, 1)).to_contain_text("第二百三十二条")

    card = open_source(page, 1)
    mark = card.locator("mark")
    expect(mark).to_be_visible()
    expect(mark).to_contain_text(MURDER)
    for fact in ("中华人民共和国刑法", "第二百三十二条", "已被修改 · amended", "第四章"):
        expect(card).to_contain_text(fact)
    shot(page, "02-citation-card", card)

    page.keyboard.press("Escape")
    page.get_by_role("button", name="👍").click()  # POST /v1/feedback
    expect(page.get_by_text("Thank you — feedback saved.")).to_be_visible()


def test_an_out_of_corpus_question_shows_nearest_passages_not_an_answer(new_page) -> None:
    page: Page = new_page()
    ask(page, COOKING_QUESTION)
    warning = page.locator('[data-testid="stAlertContainer"]', has_text="The sources do not cover this")
    expect(warning).to_be_visible()
    expect(page.get_by_text("Nearest passages — shown for orientation")).to_be_visible()
    expect(page.locator(".dossier-card.nearest")).to_have_count(3)
    expect(page.get_by_role("button", name="[1] ", exact=False)).to_have_count(0)  # no citation buttons
    shot(page, "03-abstained", warning)


def test_settings_reach_the_api_and_timings_open_on_demand(new_page) -> None:
    page: Page = new_page()
    slider = sidebar(page).get_by_role("slider")
    slider.focus()
    page.keyboard.press("Home")  # k = 1: one passage, so one source
    expect(slider).to_have_value("1")
    wait_idle(page)
    ask(page, QUESTION)
    expect(source_button(page, 1)).to_be_visible()
    expect(page.get_by_role("button", name="[2] ", exact=False)).to_have_count(0)

    answers(page).last.get_by_text("Per-stage timings").click()
    table = answers(page).last.locator("table")
    for stage in ("retrieve", "↳ bm25", "generate", "total"):
        expect(table).to_contain_text(stage)
    shot(page, "04-k1-and-timings", table)

    # the slice holds only amended articles (status 已被修改): "in force only" leaves nothing to answer from
    sidebar(page).get_by_text("Only statutes in force").click()
    wait_idle(page)
    ask(page, QUESTION)
    expect(page.locator('[data-testid="stAlertContainer"]', has_text="The sources do not cover this")).to_be_visible()
    expect(page.get_by_text("no passage was retrieved")).to_be_visible()


def test_an_answer_that_pastes_its_passages_says_so(new_page) -> None:
    """A paste passes the citation check, so the reader is told it is the sources' text, not an answer."""
    page: Page = new_page()
    ask(page, "故意杀人罪的法条原文是什么？")
    note = page.get_by_text("Quoted, not summarised: 100% of this reply")
    expect(note).to_be_visible()
    expect(source_button(page, 1)).to_be_visible()  # the citations still open: a paste is marked, not hidden
    shot(page, "05-pasted-answer")
