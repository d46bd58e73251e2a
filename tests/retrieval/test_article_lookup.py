"""Articles a question names, found by law name and article number: the parsing, the version a law resolves to,
and the retriever putting the named article first over a real index."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fakes import hits_of
from retrieval_support import HashEmbedder, hash_builder, shared_tokenizer, write_chunk_store

from core.records import Chunk
from domains.config import RetrievalConfig
from ingest.store import ChunkStore
from retrieval.article_lookup import ArticleCatalogue, article_number
from retrieval.faiss_index import FaissIndexSpec
from retrieval.hybrid import ARTICLE_STAGE, HybridRetriever

CRIMINAL, CIVIL, OLD_CIVIL = "criminal", "civil-2020", "civil-1986"


def _meta(law_id: str, name: str, number: int, sub: int = 0, status: str = "现行有效",
          date: str = "2020-05-28") -> dict:
    return {"law_id": law_id, "law_name": name, "article_num": number, "article_sub": sub, "status": status,
            "version_date": date}


ROWS = [
    (1, _meta(CRIMINAL, "中华人民共和国刑法", 133)),
    (2, _meta(CRIMINAL, "中华人民共和国刑法", 133, sub=1)),
    (3, _meta(CIVIL, "中华人民共和国民法典", 188)),
    (4, _meta(OLD_CIVIL, "中华人民共和国民法通则", 135, status="已废止", date="1986-04-12")),
    (5, _meta("amend-11", "中华人民共和国刑法修正案（十一）", 1)),
    (6, _meta("labour-old", "中华人民共和国劳动合同法", 47, status="历史版本", date="2007-06-29")),
    (7, _meta("labour-new", "中华人民共和国劳动合同法", 47, status="现行有效", date="2012-12-28")),
]


@pytest.mark.parametrize(("text", "number"), [("一千零五十七", 1057), ("十四", 14), ("二百三十二", 232),
                                              ("一百零八", 108), ("188", 188), ("两千", 2000)])
def test_article_numbers(text: str, number: int) -> None:
    assert article_number(text) == number


def test_a_law_name_and_an_article_number_name_one_chunk() -> None:
    catalogue = ArticleCatalogue(ROWS)
    assert catalogue.lookup("民法典第188条规定的诉讼时效是多久？") == [3]
    assert catalogue.lookup("《中华人民共和国刑法》第一百三十三条之一的内容是什么") == [2]
    assert catalogue.lookup("刑法第133条和民法典第一百八十八条分别说什么") == [1, 3]  # each tied to its own law
    assert catalogue.lookup("ＤＵＩ：刑法第１３３条") == [1]  # full-width digits


def test_nothing_is_looked_up_without_both_a_law_and_an_article() -> None:
    catalogue = ArticleCatalogue(ROWS)
    assert catalogue.lookup("第一百三十三条说了什么？") == []  # which law?
    assert catalogue.lookup("民法典关于诉讼时效是怎么规定的？") == []
    assert catalogue.lookup("民法典第9999条") == []  # no such article


def test_the_version_in_force_answers_and_the_longest_law_name_wins() -> None:
    catalogue = ArticleCatalogue(ROWS)
    assert catalogue.lookup("劳动合同法第四十七条的内容是什么？") == [7]  # not the superseded 2007 text
    assert catalogue.lookup("刑法修正案（十一）第一条") == [5]  # not 刑法 article 1


@pytest.fixture(scope="module")
def named_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("article-lookup")
    texts = {133: "违反交通运输管理法规，因而发生重大事故的，处三年以下有期徒刑或者拘役。",
             232: "故意杀人的，处死刑、无期徒刑或者十年以上有期徒刑。",
             264: "盗窃公私财物，数额较大的，或者多次盗窃、入户盗窃、携带凶器盗窃、扒窃的，处三年以下有期徒刑。"}
    chunks = [Chunk(f"{CRIMINAL}#{n}", f"{CRIMINAL}#{n}", t, 0, len(t), f"中华人民共和国刑法 第{n}条",
                    _meta(CRIMINAL, "中华人民共和国刑法", n)) for n, t in texts.items()]
    store = write_chunk_store(tmp / "chunks.sqlite", chunks)
    with ChunkStore(store) as source:
        hash_builder(tmp / "index").build(source)
    return tmp / "index"


def _retriever(root: Path, **cfg: object) -> HybridRetriever:
    return HybridRetriever(replace(RetrievalConfig(), **cfg), index_location=root, embedder=HashEmbedder(),
                           tokenizer=shared_tokenizer(), faiss_spec=FaissIndexSpec()).load()


def test_the_named_article_comes_first_with_its_stage_scores_kept(named_index: Path) -> None:
    question = "刑法第二百六十四条的内容是什么？"  # the words favour nothing: the number decides
    plain = hits_of(_retriever(named_index), question, 3)
    named = hits_of(_retriever(named_index, article_lookup=True), question, 3)
    assert named[0].chunk.chunk_id == f"{CRIMINAL}#264" and named[0].stage_scores[ARTICLE_STAGE] == 1.0
    assert {"dense", "bm25"} <= set(named[0].stage_scores)  # it was ranked too: those scores stay for abstention
    assert sorted(h.chunk.chunk_id for h in named) == sorted(h.chunk.chunk_id for h in plain)
    assert len({h.chunk.chunk_id for h in named}) == 3


def test_a_filter_still_binds_the_named_article(named_index: Path) -> None:
    retriever = _retriever(named_index, article_lookup=True)
    hits = hits_of(retriever, "刑法第二百六十四条的内容是什么？", 3, filters={"article_num": [133, 232]})
    assert f"{CRIMINAL}#264" not in {h.chunk.chunk_id for h in hits}
