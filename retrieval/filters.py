"""Metadata filters: `{"status": ["现行有效", "已被修改"], "law_name": "中华人民共和国刑法"}`.

A scalar value means equality, a list / tuple / set means "one of". Every key must match (AND). Keys are looked
up in the chunk metadata first, then among the chunk's own fields (doc_id, title). Values compare as given or,
failing that, as strings, so a CLI `article_num=264` matches the integer 264.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import RequestError
from core.records import Chunk


def _as_options(value: Any) -> tuple[Any, ...]:
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(value)
    return (value,)


@dataclass(frozen=True, slots=True)
class MetadataFilter:
    """Conditions as (key, allowed values) pairs, sorted so equal filters are equal (and hash the same)."""

    conditions: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> MetadataFilter:
        if not mapping:
            return cls()
        return cls(tuple(sorted((str(k), _as_options(v)) for k, v in mapping.items())))

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def merged(self, other: MetadataFilter) -> MetadataFilter:
        """`other`'s conditions override ours key by key (a query's filters over the domain's defaults)."""
        keys = {k for k, _ in other.conditions}
        kept = [c for c in self.conditions if c[0] not in keys]
        return MetadataFilter(tuple(sorted([*kept, *other.conditions])))

    def matches(self, metadata: Mapping[str, Any], chunk_fields: Mapping[str, Any] | None = None) -> bool:
        for key, options in self.conditions:
            if key in metadata:
                value = metadata[key]
            elif chunk_fields is not None and key in chunk_fields:
                value = chunk_fields[key]
            else:
                return False
            if not _one_of(value, options):
                return False
        return True

    def matches_chunk(self, chunk: Chunk) -> bool:
        return self.matches(chunk.metadata, {"doc_id": chunk.doc_id, "title": chunk.title, "chunk_id": chunk.chunk_id})


def _one_of(value: Any, options: tuple[Any, ...]) -> bool:
    if value in options:
        return True
    text = str(value)
    return any(text == str(option) for option in options)


def parse_filter_args(items: Iterable[str]) -> MetadataFilter:
    """CLI / query-string form: `key=value`, repeated keys or `key=a|b` give a list of allowed values."""
    mapping: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RequestError(f"filter {item!r}: expected key=value (or key=a|b for any of several values)")
        mapping.setdefault(key.strip(), []).extend(v.strip() for v in value.split("|"))
    return MetadataFilter.from_mapping(mapping)
