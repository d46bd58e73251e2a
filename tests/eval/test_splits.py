"""The eval split is deterministic, disjoint and roughly 60 / 20 / 20."""

from __future__ import annotations

from collections import Counter

import pytest

from core.errors import ConfigError
from domains import load_domain
from eval.evalsets import load_evalset
from eval.splits import SPLITS, parse_splits, split_of


def test_split_is_deterministic_and_proportioned() -> None:
    ids = [f"rec-{i}" for i in range(5000)]
    first = [split_of(i) for i in ids]
    assert first == [split_of(i) for i in ids]
    counts = Counter(first)
    assert 0.55 < counts["train"] / 5000 < 0.65
    assert 0.17 < counts["dev"] / 5000 < 0.23
    assert 0.17 < counts["test"] / 5000 < 0.23


def test_shipped_eval_set_splits_are_disjoint_and_cover_it() -> None:
    cfg = load_domain("legal")
    name = "cail2018_lawbench_fact2article"
    parts = {s: {r.record_id for r in load_evalset(cfg, name, splits=frozenset([s])).records} for s in SPLITS}
    everything = {r.record_id for r in load_evalset(cfg, name).records}
    assert not parts["train"] & parts["dev"]
    assert not parts["train"] & parts["test"] and not parts["dev"] & parts["test"]
    assert parts["train"] | parts["dev"] | parts["test"] == everything
    assert all(parts.values())


def test_parse_splits() -> None:
    assert parse_splits("all") == frozenset(SPLITS)
    assert parse_splits("dev, test") == frozenset({"dev", "test"})
    with pytest.raises(ConfigError, match="unknown split"):
        parse_splits("valid")
