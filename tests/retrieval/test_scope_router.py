"""The scope router: a linear classifier over query vectors that sends case descriptions to the scope stage's higher
weight. Its file round-trips and a broken one names the command; `dossier train router` fits on the train split and
reports dev shares; a negative routed weight is refused."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.errors import ConfigError
from retrieval.scope_router import ScopeRouter
from training.retriever.scope_router import build_router

CASES, OTHERS = "cail2018_lawbench_fact2article", "lawyer_llama_consult_article_retrieval"


def test_a_router_routes_by_its_logit_and_round_trips(tmp_path) -> None:
    router = ScopeRouter("all-minilm-l6-v2", np.array([1.0, -1.0], np.float32), -0.5, report={"cases": [CASES]})
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.0]], np.float32)
    assert router.routes(vectors).tolist() == [True, False, True]  # logits 0.5, -1.5, 0 (0 routes)
    loaded = ScopeRouter.load(router.save(tmp_path / "router.npz"), "legal")
    assert loaded.embedder == router.embedder and loaded.report == {"cases": [CASES]}
    assert loaded.routes(vectors).tolist() == [True, False, True]
    with pytest.raises(ConfigError, match="dims"):
        loaded.routes(np.ones((1, 3), np.float32))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    for path in (tmp_path / "bad.npz", tmp_path / "none.npz"):
        with pytest.raises(ConfigError, match="dossier train router --domain legal"):
            ScopeRouter.load(path, "legal")


def test_the_router_is_fitted_on_train_questions_and_tells_the_kinds_apart(slice_retriever, legal_cfg) -> None:
    router = build_router(legal_cfg, slice_retriever.embedder, [CASES], [OTHERS], per_set=60)
    assert router.report["train"] == {CASES: 60, OTHERS: 60}
    routed = router.report["dev_routed"]
    # case descriptions read apart from everyday questions even in the tiny English embedder's space
    assert routed[CASES] > 0.8 and routed[OTHERS] < 0.2
    with pytest.raises(ConfigError, match="both"):
        build_router(legal_cfg, slice_retriever.embedder, [CASES], [CASES, OTHERS])
    with pytest.raises(ConfigError, match="--cases"):
        build_router(legal_cfg, slice_retriever.embedder, [], [OTHERS])


def test_a_negative_routed_weight_is_refused(legal_cfg) -> None:
    with pytest.raises(ConfigError, match="scope_weight_routed"):
        replace(legal_cfg.retrieval, scope_weight_routed=-1.0)


def test_the_train_commands_refuse_bad_arguments_before_any_work(capsys) -> None:
    from cli import main

    assert main(["train", "gate", "--domain", "legal", "--exclude", "病"]) == 2  # a filter without its file
    assert "--exclude filters --negatives" in capsys.readouterr().err
    assert main(["train", "router", "--domain", "legal", "--cases", CASES, "--others", CASES]) == 2
    assert "both a case set and another" in capsys.readouterr().err
