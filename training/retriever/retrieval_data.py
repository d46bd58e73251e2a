"""Training data for the retrieval recipes, from the TRAIN split only (eval/splits.py): never train on what the
held-out split measures.

- `examples(...)`: (query, gold doc ids) pairs of one eval set's train split. For CAIL2018 the charge-only records
  (no article gold) can be labelled through a charge -> article map learned from the train split's records that
  have a single charge (`charge_map=True`).
- `candidates(...)`: the documents a query is ranked against: the corpus files that hold the gold ids, narrowed by
  the eval set's `corpus_filter` (e.g. the 505 Criminal Law articles for CAIL).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domains.config import DomainConfig
from eval.evalsets import EvalRecord, load_evalset, read_jsonl, to_record
from eval.splits import Split

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Example:
    query_id: str
    query: str
    gold_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Candidates:
    doc_ids: tuple[str, ...]
    texts: tuple[str, ...]


def split_examples(cfg: DomainConfig, evalset: str, split: Split, limit: int = 0) -> list[Example]:
    records = load_evalset(cfg, evalset, splits=frozenset({split}), limit=limit).records
    return [Example(r.record_id, r.query, r.gold_ids) for r in records]


def charge_article_map(records: Iterable[EvalRecord]) -> dict[str, tuple[str, ...]]:
    """charge -> its most frequent gold article set among single-charge records (train split only)."""
    seen: dict[str, Counter[tuple[str, ...]]] = defaultdict(Counter)
    for record in records:
        charges = record.fields.get("accusation") or []
        if len(charges) == 1 and record.gold_ids:
            seen[charges[0]][tuple(sorted(record.gold_ids))] += 1
    return {charge: counts.most_common(1)[0][0] for charge, counts in seen.items()}


def charge_only_examples(cfg: DomainConfig, evalset: str, mapping: Mapping[str, Sequence[str]]) -> list[Example]:
    """Records without article gold (CAIL `has_article_gold = false`), labelled through `mapping`; a record with
    a charge the map does not know is left out. Only train-split records are used."""
    spec = cfg.evalset(evalset)
    out: list[Example] = []
    for line_no, raw in enumerate(read_jsonl(cfg.path(spec.path)), start=1):
        record = to_record(raw, spec, line_no)
        charges = raw.get("accusation") or []
        if record.gold_ids or record.split != "train" or not charges or any(c not in mapping for c in charges):
            continue
        gold = tuple(dict.fromkeys(doc for c in charges for doc in mapping[c]))
        out.append(Example(record.record_id, record.query, gold))
    return out


def examples(cfg: DomainConfig, evalset: str, split: Split, *, charge_map: bool = False, limit: int = 0,
             ) -> list[Example]:
    """The split's examples; for the train split with `charge_map`, plus the charge-labelled records."""
    found = split_examples(cfg, evalset, split, limit)
    if charge_map and split == "train":
        train = load_evalset(cfg, evalset, splits=frozenset({"train"})).records
        extra = charge_only_examples(cfg, evalset, charge_article_map(train))
        log.info("%s: %d charge-labelled examples added to %d", evalset, len(extra), len(found))
        found += extra
    return found


def _matches(record: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    return all(record.get(key) == value for key, value in where.items())


def candidates(cfg: DomainConfig, evalset: str, gold_ids: Iterable[str]) -> Candidates:
    """Documents of the corpus files that contain any of `gold_ids`, filtered by the set's corpus_filter."""
    wanted = set(gold_ids)
    where = cfg.evalset(evalset).corpus_filter
    doc_ids: dict[str, str] = {}
    for source in cfg.corpus:
        rows = [r for r in read_jsonl(cfg.path(source.path)) if _matches(r, where)]
        ids = [str(r.get(source.id_field)) for r in rows]
        if wanted & set(ids):
            for doc_id, row in zip(ids, rows, strict=True):
                doc_ids.setdefault(doc_id, str(row.get(source.text_field) or ""))
    missing = wanted - set(doc_ids)
    if missing:
        log.warning("%s: %d gold ids not among the candidates (e.g. %s)", evalset, len(missing), sorted(missing)[0])
    return Candidates(tuple(doc_ids), tuple(doc_ids.values()))


@dataclass(frozen=True, slots=True)
class IndexedCandidates:
    """The chunks of a built index: their document ids and the index's own (n, dim) document vectors."""

    doc_ids: tuple[str, ...]
    vectors: Any


def index_candidates(index_location: Path) -> IndexedCandidates:
    """Read every chunk vector back from an index (a root with `current`, or a version dir): training against
    exactly what the dense stage searches, without embedding the corpus again."""
    import numpy as np

    from retrieval.docstore import SqliteDocstore
    from retrieval.faiss_index import FaissIndex, FaissIndexSpec
    from retrieval.index_files import DOCSTORE_FILE, FAISS_FILE
    from retrieval.store import CURRENT, IndexStore, open_version_dir

    if (index_location / CURRENT).is_file():
        directory, manifest = IndexStore(index_location).open(None)
    else:
        directory, manifest = open_version_dir(index_location)
    dense = FaissIndex.load(directory / FAISS_FILE, FaissIndexSpec(kind=manifest.index_kind))  # type: ignore[arg-type]
    keys = dense.keys()
    vectors = np.vstack([dense.faiss_index.reconstruct(int(key)) for key in keys]).astype(np.float32)
    docstore = SqliteDocstore(directory / DOCSTORE_FILE)
    try:
        chunks = docstore.chunks(keys.tolist())
    finally:
        docstore.close()
    return IndexedCandidates(tuple(chunks[int(key)].doc_id for key in keys), vectors)
