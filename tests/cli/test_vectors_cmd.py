"""`dossier index pack` and `dossier index import` with the real MiniLM embedder on a small statute corpus: a pack
written from the corpus, an index built from it in an empty vector cache, and the cache seeded from that index."""

from __future__ import annotations

import ast
import gzip
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from slice_index import CRIMINAL_LAW, minilm_cfg

from cli import main
from domains import load_domain


@pytest.fixture()
def small_domain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minilm_dir: str):  # noqa: ANN201
    """The legal domain with MiniLM over 40 Criminal Law articles, rooted in a folder of its own."""
    root = tmp_path / "domain"
    (root / "data").mkdir(parents=True)
    with gzip.open(CRIMINAL_LAW, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(40), f, strict=False)]
    with gzip.open(root / "data" / "articles.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    legal = minilm_cfg(load_domain("legal"))
    cfg = replace(legal, root=root, corpus=(replace(legal.corpus[0], path="data/articles.jsonl.gz"),))
    monkeypatch.setattr("domains.load_domain", lambda name: cfg)
    monkeypatch.setenv("DOSSIER_HOME", str(tmp_path / "home"))
    return cfg


def _stats(out: str) -> dict:
    return ast.literal_eval(out[out.index("{"):].strip())  # the build prints its stats dict last


def test_pack_then_build_from_the_pack_then_import_the_index(small_domain, tmp_path: Path,  # noqa: ANN001
                                                             capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["index", "pack", "--domain", "legal"]) == 0
    assert "vector pack of 40 chunks" in capsys.readouterr().out
    pack = json.loads((small_domain.root / "vectors" / "pack.json").read_text())
    assert pack["n"] == 40 and pack["embedder"] == "all-minilm-l6-v2" and pack["quantisation_cosine"]["min"] > 0.99

    monkeypatch.setenv("DOSSIER_HOME", str(tmp_path / "fresh-home"))  # an empty vector cache, no index
    assert main(["index", "build", "--domain", "legal"]) == 0
    stats = _stats(capsys.readouterr().out)
    assert stats["from_pack"] == 40 and stats["embedded"] == 0 and stats["pack_sample_cosine"] > 0.99

    version = next((tmp_path / "fresh-home" / "domains" / "legal" / "index").glob("v0001"))
    monkeypatch.setenv("DOSSIER_HOME", str(tmp_path / "third-home"))
    assert main(["index", "import", "--domain", "legal", str(version)]) == 0
    assert "40 new vectors" in capsys.readouterr().out
    assert os.listdir(tmp_path / "third-home" / "vectors")
