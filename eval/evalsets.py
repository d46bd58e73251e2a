"""Load an eval set declared in a domain's `domain.toml` (or a `--file` of the same schema) into frozen records.

Loading applies the set's `where` (keep records whose fields equal the given values), maps the configured query /
gold / answer fields, optionally keeps only some splits (eval.splits), and counts what it dropped: records that
fail `where` are `filtered`, records without gold ids (when gold is required) are `skipped`.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from domains.config import DomainConfig, EvalSetConfig
from eval.splits import SPLITS, Split, split_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EvalRecord:
    record_id: str
    query: str
    gold_ids: tuple[str, ...] = ()
    answer: str = ""  # a list-valued answer field is joined with "、"
    split: Split = "train"
    fields: Mapping[str, Any] = field(default_factory=dict)  # the raw record, for recipes that need more


@dataclass(frozen=True, slots=True)
class EvalSet:
    domain: str
    spec: EvalSetConfig
    source: Path
    records: tuple[EvalRecord, ...]
    skipped: int = 0  # no gold ids
    filtered: int = 0  # did not match `where`
    excluded_by_split: int = 0


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file, plain or gzip-compressed (by the .gz suffix)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}:{line_no}: not valid JSON: {err}") from err


def read_labelled(path: Path, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows of a hand-labelled JSONL file; a row lacking one of `fields` raises ValueError naming it."""
    rows = list(read_jsonl(Path(path)))
    for row in rows:
        missing = [f for f in fields if f not in row]
        if missing:
            raise ValueError(f"{path}: row {row.get('id', '?')} lacks {', '.join(missing)}")
    log.info("loaded %d labelled rows from %s", len(rows), path)
    return rows


def _query_text(value: Any) -> str:
    """A query field is a string, or a chat (a list of {role, content}): then its last user turn."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], Mapping):
        users = [m.get("content", "") for m in value if m.get("role") == "user"]
        return str(users[-1] if users else value[-1].get("content", ""))
    return "" if value is None else str(value)


def _answer_text(value: Any) -> str:
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return "" if value is None else str(value)


def _matches(record: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    return all(record.get(key) == value for key, value in where.items())


def to_record(raw: Mapping[str, Any], spec: EvalSetConfig, line_no: int) -> EvalRecord:
    record_id = str(raw.get(spec.id_field) or f"{spec.name}-{line_no}")
    gold = raw.get(spec.gold_field) if spec.gold_field else None
    gold_ids = tuple(str(g) for g in gold) if isinstance(gold, list) else (() if not gold else (str(gold),))
    return EvalRecord(
        record_id=record_id,
        query=_query_text(raw.get(spec.query_field)),
        gold_ids=gold_ids,
        answer=_answer_text(raw.get(spec.answer_field)) if spec.answer_field else "",
        split=split_of(record_id),
        fields=raw,
    )


def load_evalset(
    cfg: DomainConfig,
    name: str,
    *,
    file: Path | None = None,
    splits: frozenset[Split] = frozenset(SPLITS),
    require_gold: bool = True,
    limit: int = 0,
) -> EvalSet:
    """The records of eval set `name` of domain `cfg` (from `file` instead of the declared path if given).
    `limit` > 0 keeps the first `limit` usable records (after where / gold / split)."""
    spec = cfg.evalset(name)
    source = Path(file) if file is not None else cfg.path(spec.path)
    if not source.is_file():
        raise ConfigError(f"eval set {name!r}: file not found: {source}")
    records: list[EvalRecord] = []
    skipped = filtered = excluded = 0
    for line_no, raw in enumerate(read_jsonl(source), start=1):
        if not _matches(raw, spec.where):
            filtered += 1
            continue
        record = to_record(raw, spec, line_no)
        if require_gold and not record.gold_ids:
            skipped += 1
        elif record.split not in splits:
            excluded += 1
        elif not limit or len(records) < limit:
            records.append(record)
    log.info("eval set %s: %d records, %d skipped (no gold), %d filtered (where), %d in other splits",
             name, len(records), skipped, filtered, excluded)
    return EvalSet(cfg.name, spec, source, tuple(records), skipped, filtered, excluded)
