"""The Streamlit app, run headless by streamlit's AppTest against the live API server."""

from __future__ import annotations

import json

import pytest
from api_support import COOKING_QUESTION, needs_minilm

from domains import DOMAINS_DIR

pytestmark = needs_minilm
APP = str(DOMAINS_DIR.parent / "ui" / "app.py")


@pytest.fixture
def app(live_server, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DOSSIER_API_URL", live_server.url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_domain_picker_and_disclaimer(app):
    assert app.sidebar.selectbox[0].value == "legal"
    app.chat_input[0].set_value("故意杀人罪判几年？").run()
    assert not app.exception, app.exception
    assert len(app.chat_message) == 2
    captions = " ".join(c.value for c in app.caption)
    assert "律师" in captions  # the legal disclaimer


def test_abstention_is_shown_plainly(app):
    app.chat_input[0].set_value(COOKING_QUESTION).run()
    assert not app.exception, app.exception
    assert app.warning and "没有找到" in app.warning[0].value
    assert "The sources do not cover this" in app.warning[0].value
    assert any(c.value.startswith("Nearest passages") for c in app.caption)
    assert not app.get("popover")  # no citation to open


def test_thumbs_down_is_stored_as_feedback(app, feedback_root):
    app.chat_input[0].set_value("抢劫罪怎么判？").run()
    down = next(b for b in app.button if b.label == "👎")
    down.click().run()
    assert not app.exception, app.exception
    record = json.loads((feedback_root / "legal" / "kto.jsonl").read_text().splitlines()[-1])
    assert record["question"] == "抢劫罪怎么判？" and record["label"] is False
