"""API test constants shared by the fixtures and the tests (a module of its own: `from conftest import` picks
whichever test folder's conftest was imported first)."""

from __future__ import annotations

import pytest

from models.registry import is_fetched

IN_DOMAIN = [
    "故意杀人罪判几年？",
    "抢劫罪怎么判？",
    "故意伤害他人身体的怎么处罚？",
    "绑架罪如何处罚？",
    "敲诈勒索罪怎么判？",
]
# all-MiniLM-L6-v2 reads almost no Chinese, so with it only an English off-topic question is separable by the
# dense score; the Chinese cooking questions are checked with the real default embedder in a slow test.
OUT_OF_DOMAIN = [
    "What is the best way to roast a chicken?",
    "How many eggs go into a pancake batter?",
    "Which wine goes with grilled salmon?",
    "How do I make fresh pasta at home?",
]
COOKING_QUESTION = "How long should I knead bread dough?"

needs_minilm = pytest.mark.skipif(
    not is_fetched("all-minilm-l6-v2"), reason="run `dossier models fetch all-minilm-l6-v2` (make test does)"
)
