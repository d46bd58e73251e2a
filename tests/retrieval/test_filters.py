from __future__ import annotations

import pytest

from core.errors import RequestError
from core.records import Chunk
from retrieval.filters import MetadataFilter, parse_filter_args

META = {"status": "现行有效", "law_name": "中华人民共和国刑法", "article_num": 264}


def test_equality_and_in_lists() -> None:
    assert MetadataFilter.from_mapping({"status": ["现行有效", "已被修改"]}).matches(META)
    assert MetadataFilter.from_mapping({"law_name": "中华人民共和国刑法", "article_num": 264}).matches(META)
    assert not MetadataFilter.from_mapping({"status": "已废止"}).matches(META)
    assert not MetadataFilter.from_mapping({"missing": "x"}).matches(META)
    assert MetadataFilter.from_mapping({"article_num": "264"}).matches(META)  # CLI strings match ints


def test_chunk_fields_and_merge() -> None:
    chunk = Chunk("c1", "d1", "text", 0, 4, "title", META)
    assert MetadataFilter.from_mapping({"doc_id": "d1"}).matches_chunk(chunk)
    base = MetadataFilter.from_mapping({"status": "已废止", "law_name": "中华人民共和国刑法"})
    merged = base.merged(MetadataFilter.from_mapping({"status": "现行有效"}))
    assert merged.matches(META) and not base.matches(META)
    assert MetadataFilter.from_mapping({"a": 1, "b": 2}) == MetadataFilter.from_mapping({"b": 2, "a": 1})


def test_parse_filter_args() -> None:
    f = parse_filter_args(["status=现行有效|已被修改", "law_name=中华人民共和国刑法"])
    assert f == MetadataFilter.from_mapping({"status": ["现行有效", "已被修改"], "law_name": ["中华人民共和国刑法"]})
    with pytest.raises(RequestError):
        parse_filter_args(["status"])
