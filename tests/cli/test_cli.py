"""`dossier ask` and `dossier chat` over the test pipeline (the CLI's pipeline builder is the one seam replaced:
the domain's real models are not in the default test run)."""

from __future__ import annotations

import json

import pytest
from api_support import needs_minilm

from cli import answer_cmd, main

pytestmark = needs_minilm


@pytest.fixture
def cli_pipeline(legal_pipeline, monkeypatch):
    monkeypatch.setattr(answer_cmd, "_build", lambda args: legal_pipeline)
    return legal_pipeline


def test_ask_json(cli_pipeline, capsys):
    assert main(["ask", "--domain", "legal", "--json", "故意杀人罪判几年？"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["domain"] == "legal" and not body["abstained"]
    assert "第二百三十二条" in body["hits"][0]["title"]
    chunk_ids = {h["chunk_id"] for h in body["hits"]}
    assert all(c["chunk_id"] in chunk_ids for c in body["citations"])


def test_ask_text_shows_abstention_and_nearest_passages(cli_pipeline, capsys):
    from api_support import COOKING_QUESTION

    assert main(["ask", "--domain", "legal", COOKING_QUESTION]) == 0
    out = capsys.readouterr().out
    assert out.startswith(cli_pipeline.cfg.prompts.abstain)
    assert "[1] 中华人民共和国刑法" in out and cli_pipeline.cfg.disclaimer in out


def test_chat_streams_and_keeps_history(cli_pipeline, capsys, monkeypatch):
    asked = iter(["故意杀人罪判几年？", "那情节较轻的呢？", "/sources", "/quit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(asked))
    seen = []
    original = cli_pipeline.stream

    def spy(question, history=(), **kw):
        seen.append((question, len(history)))
        return original(question, history, **kw)

    monkeypatch.setattr(cli_pipeline, "stream", spy)
    assert main(["chat", "--domain", "legal"]) == 0
    assert seen == [("故意杀人罪判几年？", 0), ("那情节较轻的呢？", 2)]
    assert cli_pipeline.cfg.disclaimer in capsys.readouterr().out
