from ingest_helpers import criminal_law_records

from domains.config import CorpusSource
from ingest.dedup import MinHashNearDuplicates, content_hash, group_key, identity_fields

LAW = ("law_id", "law_name", "article_no", "status")


def test_identity_fields_are_shared_by_the_sources_that_declare_metadata() -> None:
    legal = [CorpusSource("a", metadata_fields=(*LAW, "cail_article")), CorpusSource("b", metadata_fields=LAW)]
    assert identity_fields(legal) == LAW
    finance = [CorpusSource("passages"), CorpusSource("statutes", metadata_fields=LAW)]
    assert identity_fields(finance) == LAW  # passages carry none of them and are compared with each other
    assert identity_fields([CorpusSource("x")]) == ()


def test_group_and_hash_separate_versions_of_one_article() -> None:
    record = criminal_law_records(1)[0]
    old = {**record, "law_id": "old", "status": "historical"}
    groups = {group_key(r, LAW) for r in (record, old)}
    assert len(groups) == 2
    assert len({content_hash(g, "", record["text"]) for g in groups}) == 2


def test_near_duplicates_within_a_group_only() -> None:
    text = criminal_law_records(3)[2]["text"]
    edited = text[:-5] + "X" + text[-5:]
    near = MinHashNearDuplicates(threshold=0.8)
    assert near.find_or_add("a", "g1", text) is None
    found = near.find_or_add("b", "g1", edited)
    assert found is not None and found[0] == "a" and found[1] >= 0.8
    assert near.find_or_add("c", "g2", edited) is None  # another group: another law version
    assert near.find_or_add("d", "g1", "完全不同的一段文字，没有任何相似之处。") is None
