"""The load bench's harness (bench/bench_load.py) in small: 50 searches at concurrency 8 and 5 asks at concurrency 4
against the real uvicorn server of the API tests (MiniLM slice index, tiny generator) -> no errors."""

from __future__ import annotations

import os

import pytest

from bench.bench_load import LoadResult, rss_mib, run_load

QUERIES = ["故意杀人罪判几年？", "盗窃公私财物数额较大的，怎么处罚？", "抢劫罪的法定刑是什么？", "诈骗罪怎么处罚？",
           "故意伤害致人重伤怎么判？", "绑架罪的刑期", "敲诈勒索罪的处罚", "侵占他人财物怎么处理？"]


def test_searches_and_asks_under_concurrency_have_no_errors(live_server) -> None:
    before = rss_mib(os.getpid())
    searches = run_load(live_server.url, "/v1/search",
                        [{"domain": "legal", "query": QUERIES[i % len(QUERIES)], "k": 5} for i in range(50)], 8)
    asks = run_load(live_server.url, "/v1/ask", [{"domain": "legal", "question": q} for q in QUERIES[:5]], 4)
    for result, n in ((searches, 50), (asks, 5)):
        assert result.errors == 0, result.error_samples
        assert result.n == n and 0 < result.pct_ms(50) <= result.pct_ms(95) and result.throughput > 0
    assert rss_mib(os.getpid()) > before / 2 > 0  # readable; the server shares this process here


def test_load_is_refused_beyond_loopback() -> None:
    with pytest.raises(ValueError, match="127.0.0.1"):
        run_load("http://example.com", "/v1/search", [{}], 1)
    assert LoadResult("/x", 1).pct_ms(50) == 0.0
