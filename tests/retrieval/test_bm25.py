from __future__ import annotations

from pathlib import Path

import numpy as np

from domains import DOMAINS_DIR
from retrieval.bm25 import Bm25Retriever
from retrieval.zh_tokenizer import JiebaTokenizer, char_bigrams

USER_DICT = DOMAINS_DIR / "legal" / "userdict.txt"


_CACHE: dict[str, Bm25Retriever] = {}


def _index(rows: list[dict]) -> Bm25Retriever:
    """One BM25 index over the article fixture per run (with the legal user dictionary)."""
    if "bm25" not in _CACHE:
        tokenizer = JiebaTokenizer(USER_DICT).load()
        bm25 = Bm25Retriever(tokenizer)
        bm25.index([tokenizer.tokenize(r["text"]) for r in rows])
        _CACHE["bm25"] = bm25
    return _CACHE["bm25"]


def test_keyword_query_finds_the_right_article(articles: list[dict]) -> None:
    bm25 = _index(articles)
    queries = {"入户盗窃 携带凶器 扒窃": "第二百六十四条", "以暴力、胁迫方法抢劫公私财物": "第二百六十三条",
               "故意杀人的，处死刑": "第二百三十二条", "交通运输肇事后逃逸": "第一百三十三条"}
    scores, positions = bm25.search(list(queries), 3)
    for row, want in zip(positions, queries.values(), strict=True):
        assert articles[row[0]]["article_no"] == want
    assert (np.diff(scores, axis=1) <= 0).all()  # best first


def test_mask_excludes_documents_and_k_beyond_matches(articles: list[dict]) -> None:
    bm25 = _index(articles)
    target = next(i for i, r in enumerate(articles) if r["article_no"] == "第二百六十四条")
    mask = np.ones(len(articles), dtype=bool)
    mask[target] = False
    _, positions = bm25.search(["入户盗窃 扒窃"], 5, mask)
    assert target not in positions[0]
    scores, positions = bm25.search(["量子色动力学"], 5)  # nothing matches: no hits, not zero-score noise
    assert (positions == -1).all() and (scores == 0).all()


def test_tokenizer_words_and_bigram_fallback() -> None:
    tokenizer = JiebaTokenizer(USER_DICT)
    tokens = tokenizer.tokenize("被告人通过支付宝免密支付窃取人民币，数额较大。")
    assert "支付宝" in tokens and "数额较大" in tokens and "，" not in tokens
    assert char_bigrams("刑法规定") == ["刑法", "法规", "规定"]
    assert JiebaTokenizer(Path("/nonexistent/dict.txt")).user_dict is None  # a missing dictionary is optional


def test_save_and_load(tmp_path: Path, articles: list[dict]) -> None:
    bm25 = _index(articles)
    bm25.save(tmp_path)
    again = Bm25Retriever.load(tmp_path, bm25.tokenizer)
    a, b = bm25.search(["盗窃公私财物"], 5), again.search(["盗窃公私财物"], 5)
    assert (a[1] == b[1]).all() and np.allclose(a[0], b[0])
