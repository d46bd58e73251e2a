"""Conversations the server keeps: listed in the sidebar, reopened with their sources, kept across a reload,
exported as Markdown and DOCX through the browser's downloads, deleted; and never shown to another browser."""

from __future__ import annotations

import io
import re

import pytest
from api_support import needs_minilm
from app_steps import answers, ask, open_source, shot, sidebar, wait_idle
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, needs_minilm]

FIRST, SECOND = "故意杀人罪判几年？", "抢劫罪怎么判？"


def conversation_button(page: Page, title: str):
    return sidebar(page).get_by_role("button", name=re.compile(re.escape(title)))


def download(page: Page, label: str) -> bytes:
    with page.expect_download() as info:
        page.get_by_role("button", name=label).click()
    return info.value.path().read_bytes()


def test_a_conversation_is_listed_reopened_exported_and_deleted(new_page) -> None:
    page: Page = new_page()
    ask(page, FIRST)
    ask(page, SECOND)
    stored = conversation_button(page, FIRST)
    expect(stored).to_contain_text("(2)")  # two turns

    sidebar(page).get_by_role("button", name="New conversation").click()
    wait_idle(page)
    expect(answers(page)).to_have_count(0)

    page.reload()  # a new Streamlit session; the owner cookie keeps the conversations
    wait_idle(page)
    conversation_button(page, FIRST).click()
    wait_idle(page)
    expect(answers(page)).to_have_count(2)
    expect(page.get_by_text(SECOND).first).to_be_visible()
    card = open_source(page, 1)  # the reopened answer's sources open like fresh ones
    expect(card.locator("mark")).to_be_visible()
    shot(page, "05-conversation-reopened", card)
    page.keyboard.press("Escape")

    markdown = download(page, "⬇ Export Markdown").decode()
    assert FIRST in markdown and SECOND in markdown and "第二百三十二条" in markdown
    from docx import Document

    docx_text = "\n".join(p.text for p in Document(io.BytesIO(download(page, "⬇ Export DOCX"))).paragraphs)
    assert FIRST in docx_text and "第二百三十二条" in docx_text

    sidebar(page).get_by_role("button", name="🗑").first.click()
    wait_idle(page)
    expect(conversation_button(page, FIRST)).to_have_count(0)
    expect(sidebar(page).get_by_text("No stored conversation yet")).to_be_visible()
    expect(answers(page)).to_have_count(0)  # the deleted conversation left the screen too


def test_two_browsers_never_see_each_others_conversations(new_page) -> None:
    alice, bob = new_page(), new_page()
    ask(alice, FIRST)
    expect(conversation_button(alice, FIRST)).to_be_visible()
    bob.reload()
    wait_idle(bob)
    expect(sidebar(bob).get_by_text("No stored conversation yet")).to_be_visible()
    expect(conversation_button(bob, FIRST)).to_have_count(0)
    shot(bob, "06-second-browser-sees-nothing")
