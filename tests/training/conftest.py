"""Fixtures for the training tests: the shipped domains and small data files cut from shipped data."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import head_jsonl, write_jsonl

from domains import DOMAINS_DIR, load_domain
from domains.config import DomainConfig


@pytest.fixture(scope="session")
def medical() -> DomainConfig:
    return load_domain("medical")


@pytest.fixture(scope="session")
def legal() -> DomainConfig:
    return load_domain("legal")


@pytest.fixture(scope="session")
def finance() -> DomainConfig:
    return load_domain("finance")


@pytest.fixture(scope="session")
def preference_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight short medical preference pairs (shipped data) plus two broken rows the loader must drop."""
    rows = head_jsonl(DOMAINS_DIR / "medical" / "data" / "preference" / "medicalgpt_medical_reward_100.jsonl.gz", 8)
    rows = [{k: r[k][:80] for k in ("prompt", "chosen", "rejected")} for r in rows]
    rows += [{"prompt": "x", "chosen": "same", "rejected": "same"}, {"prompt": "", "chosen": "a", "rejected": "b"}]
    return write_jsonl(tmp_path_factory.mktemp("pref") / "pairs.jsonl", rows)


@pytest.fixture(scope="session")
def sft_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = head_jsonl(DOMAINS_DIR / "medical" / "data" / "sft" / "medicalgpt_medical_sft_1k.jsonl.gz", 6)
    rows = [{"messages": [{**m, "content": m["content"][:40]} for m in r["messages"]]} for r in rows]
    rows.append({"messages": [{"role": "user", "content": "no answer"}]})  # dropped: no assistant turn
    return write_jsonl(tmp_path_factory.mktemp("sft") / "sft.jsonl", rows)
