"""Deterministic train / dev / test split of the public eval sets: never train on what you evaluate on.

A record goes to a split by a hash of its id alone, so the assignment is the same on every machine, for every
run, whatever the file order, and a record keeps its split when the file grows:

    bucket = int(sha256(f"{SPLIT_SALT}:{record_id}").hexdigest()[:8], 16) % 100
    train: bucket < 60        dev: 60 <= bucket < 80        test: bucket >= 80

`train` feeds the reranker / embedder recipes (and, for CAIL, the charge -> article map), `dev` chooses between
models and calibrates the abstention threshold, `test` is the held-out split that the targets are reported on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from core.errors import ConfigError

if TYPE_CHECKING:
    from domains.config import DomainConfig

Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = ("train", "dev", "test")
SPLIT_SALT = "dossier-eval-split-v1"
_BOUNDS = (60, 80)  # percent: [0, 60) train, [60, 80) dev, [80, 100) test


def bucket_of(record_id: str) -> int:
    """A stable number in [0, 100) for a record id."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{record_id}".encode()).hexdigest()
    return int(digest[:8], 16) % 100


def split_of(record_id: str) -> Split:
    bucket = bucket_of(record_id)
    if bucket < _BOUNDS[0]:
        return "train"
    return "dev" if bucket < _BOUNDS[1] else "test"


def parse_splits(spec: str) -> frozenset[Split]:
    """'dev,test' -> {"dev", "test"}; 'all' or '' -> every split."""
    if spec in ("", "all"):
        return frozenset(SPLITS)
    names = {part.strip() for part in spec.split(",") if part.strip()}
    unknown = names - set(SPLITS)
    if unknown:
        raise ConfigError(f"unknown split(s) {sorted(unknown)}; choose from {', '.join(SPLITS)} or all")
    return frozenset(name for name in SPLITS if name in names)


def leave_out_of_bank(cfg: DomainConfig, splits: Collection[str]) -> DomainConfig:
    """`cfg` with the questions of `splits` left out of its question bank: a bank that also holds the dev questions
    (shipped once its settings were chosen on dev) must not show a dev question its own gold."""
    left_out = tuple(sorted(set(cfg.retrieval.bank_leave_out) | set(splits)))
    return replace(cfg, retrieval=replace(cfg.retrieval, bank_leave_out=left_out))
