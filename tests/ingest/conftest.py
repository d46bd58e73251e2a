"""Fixtures for ingest tests: a throwaway DOSSIER_HOME, a small domain built in tmp, and real files of each format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from domains.config import DomainConfig, domain_from_mapping

PROMPTS = {"system": "s", "answer": "{context}{question}", "rewrite": "{history}{question}", "abstain": "n"}


@pytest.fixture(autouse=True)
def _dossier_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("DOSSIER_HOME", str(home))
    return home


@pytest.fixture
def make_domain(tmp_path: Path) -> Callable[..., DomainConfig]:
    """make_domain(corpus=[{...}], **chunking) -> a DomainConfig rooted at tmp_path/domain."""

    def build(corpus: list[dict[str, Any]], **chunking: Any) -> DomainConfig:
        root = tmp_path / "domain"
        root.mkdir(exist_ok=True)
        data = {"name": "t", "display_name": "T", "language": "zh", "corpus": corpus, "prompts": PROMPTS}
        if chunking:
            data["chunking"] = chunking
        return domain_from_mapping(data, root=root)

    return build
