"""What a person does in the app, as Playwright steps: open it, ask, open a source, upload, switch settings. Waits
on what Streamlit says of itself (`data-test-script-state` on the app root) rather than on sleeps."""

from __future__ import annotations

import re
from pathlib import Path

from browser_stack import ARTIFACTS
from playwright.sync_api import Locator, Page, expect

CHAT_INPUT = '[data-testid="stChatInputTextArea"]'
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
ANSWER_S = 90_000  # ms: one answer on a loaded 2-core machine (retrieval + the streamed reply)


def open_app(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(CHAT_INPUT, timeout=60_000)
    wait_idle(page)


def wait_idle(page: Page, timeout_ms: float = ANSWER_S) -> None:
    # a rerun starts a moment after the click that causes it: let it begin before waiting for its end
    page.wait_for_timeout(300)
    page.wait_for_selector(IDLE, timeout=timeout_ms)


def answers(page: Page) -> Locator:
    """One per finished answer: its timings expander is drawn last, with the whole answer."""
    return page.locator('[data-testid="stExpander"]', has_text="Per-stage timings")


def type_question(page: Page, question: str) -> None:
    page.fill(CHAT_INPUT, question)
    page.keyboard.press("Enter")


def ask(page: Page, question: str) -> None:
    before = answers(page).count()
    type_question(page, question)
    expect(answers(page)).to_have_count(before + 1, timeout=ANSWER_S)
    wait_idle(page)


def source_button(page: Page, marker: int) -> Locator:
    """The last answer's button of citation [marker]."""
    return page.get_by_role("button", name=re.compile(rf"^\[{marker}\] ")).last


def open_source(page: Page, marker: int) -> Locator:
    """Click [marker] under the last answer; returns the card it opens."""
    source_button(page, marker).click()
    card = page.locator('[data-testid="stPopoverBody"] .dossier-card').last
    expect(card).to_be_visible()
    return card


def sidebar(page: Page) -> Locator:
    return page.locator('[data-testid="stSidebar"]')


def upload(page: Page, *paths: Path) -> None:
    """Choose files in the sidebar's uploader; the app sends them at once."""
    sidebar(page).locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([str(p) for p in paths])
    wait_idle(page, timeout_ms=180_000)


def shot(page: Page, name: str, focus: Locator | None = None) -> Path:
    """A screenshot under test-artifacts/browser/, `focus` scrolled into view first."""
    if focus is not None:
        focus.scroll_into_view_if_needed()
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
