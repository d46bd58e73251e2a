"""The product as shipped: the legal domain's own index (EmbeddingGemma), its calibrated threshold and the real
Qwen generator. Slow; needs `make index-default` (models fetched, index built)."""

from __future__ import annotations

import pytest

from core.errors import DossierError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline():
    from domains import load_domain
    from rag.build import build_pipeline

    try:
        return build_pipeline(load_domain("legal"))
    except DossierError as err:
        pytest.skip(f"the legal domain is not ready here: {err}")


def test_legal_question_is_answered_with_citations_into_the_hits(pipeline):
    answer = pipeline.answer("故意杀人罪判几年？")
    assert not answer.abstained, answer.abstain_reason
    assert any("第二百三十二条" in h.chunk.title for h in answer.hits)
    by_id = {h.chunk.chunk_id: h.chunk for h in answer.hits}
    for c in answer.citations:
        chunk = by_id[c.chunk_id]
        assert chunk.text[c.start - chunk.start : c.end - chunk.start] == c.quote
    assert answer.disclaimer


@pytest.mark.parametrize("question", ["红烧肉怎么做才能肥而不腻？", "番茄炒蛋先放番茄还是先放鸡蛋？"])
def test_cooking_question_abstains_at_the_calibrated_threshold(pipeline, question):
    if pipeline.cfg.abstention.threshold <= 0:
        pytest.skip("legal [abstention] threshold is not calibrated yet (dossier eval calibrate --domain legal)")
    answer = pipeline.answer(question)
    assert answer.abstained, answer.trace["abstention"]
    assert "generate" not in answer.trace["timings_ms"]
