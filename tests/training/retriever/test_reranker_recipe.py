"""The reranker recipe: two real training steps on a tiny local cross-encoder change its weights with a finite
loss; hard negatives exclude gold; every shipped retrieval recipe loads."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from training.retriever import embedder, reranker
from training.retriever.retrieval_data import Candidates, Example


def test_hard_negatives_are_the_best_non_gold() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    assert reranker.hard_negatives(scores, [[0], [3, 2]], 2) == [[1, 2], [1, 0]]


def test_pair_rows_label_gold_and_negatives() -> None:
    docs = Candidates(("a", "b", "c"), ("甲条", "乙条", "丙条"))
    rows = reranker.pair_rows([Example("q", "被告人盗窃财物", ("a",))], docs, [[0]], [[1, 2]], query_chars=4)
    assert rows == {"query": ["被告人盗"] * 3, "passage": ["甲条", "乙条", "丙条"], "label": [1.0, 0.0, 0.0]}


def test_two_training_steps_change_parameters(tiny_classifier_dir: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    recipe = reranker.RerankerRecipe(domain="legal", evalset="cail2018_lawbench_fact2article", max_steps=2,
                                     batch_size=2, max_length=64, precision="fp32", learning_rate=1e-3)
    model = reranker.load_cross_encoder(str(tiny_classifier_dir), recipe.max_length, recipe.precision)
    before = {name: p.detach().clone() for name, p in model.model.named_parameters()}
    docs = Candidates(("a", "b", "c"), (
        "盗窃公私财物，数额较大的，处三年以下有期徒刑。",
        "故意伤害他人身体的，处三年以下有期徒刑。",
        "以非法占有为目的，诈骗公私财物，数额较大的。",
    ))
    items = [
        Example("q1", "被告人趁无人之机窃取手机一部。", ("a",)),
        Example("q2", "被告人持刀将被害人刺伤。", ("b",)),
    ]
    rows = reranker.pair_rows(items, docs, [[0], [1]], [[1, 2], [0, 2]], recipe.query_chars)
    history = reranker.train_cross_encoder(model, rows, recipe, tmp_path / "trainer")
    assert len(history) == 2 and all(math.isfinite(h["loss"]) for h in history)
    changed = [n for n, p in model.model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert changed, "no parameter changed after two steps"
    scores = model.predict([(items[0].query, docs.texts[0])])
    assert np.isfinite(np.asarray(scores)).all()


@pytest.mark.parametrize("domain", ["legal", "medical", "finance"])
def test_shipped_recipes_load(domain: str) -> None:
    assert embedder.recipe_for(domain).domain == domain
    assert reranker.recipe_for(domain).domain == domain


@pytest.mark.parametrize(("native", "expected"), [(False, "fp32"), (True, "bf16")])
def test_auto_precision_follows_the_cpu(native: bool, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from core import hardware

    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)  # injected: any CPU means the same
    assert reranker.RerankerRecipe("legal", "x").precision == "auto"
    assert reranker.cpu_precision("auto") == expected
    assert reranker.cpu_precision("fp32") == "fp32"
